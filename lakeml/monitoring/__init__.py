"""Monitoring of served models: feedback (ground truth), drift/quality/operations checks as SQL files
run by DuckDB (``sql/monitoring/``), alert rules with webhooks, and an HTML report.

The component is ``lake.monitoring`` (:class:`lakeml.monitoring.client.Monitoring`); nothing heavy is
imported here.
"""
