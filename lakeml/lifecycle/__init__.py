"""The model lifecycle as a business process: model projects run as BPMN 2.0 processes (SpiffWorkflow),
with deliverables checked per task, roles as lanes, a CAS ledger (``project_events``), webhooks and a board.

``lake.projects`` is :class:`lakeml.lifecycle.client.Projects`. Nothing here is imported by ``import lakeml``
until a Lake is built; SpiffWorkflow is imported on first use.
"""
