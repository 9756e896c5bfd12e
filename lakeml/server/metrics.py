"""Prometheus metrics of one app (its own ``CollectorRegistry``; with ``--workers N`` each worker
process answers for itself): requests and latencies by route template and status, plus the lake's
committer (rows pending per table, commits, rows committed, retries) read at scrape time."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    """Request counters and histograms, and a collector over ``lake``'s committer."""

    def __init__(self, lake: Any):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("lakeml_http_requests", "HTTP requests answered, by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("lakeml_http_request_duration_seconds",
                                 "Time to answer a request, by method and route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_LakeCollector(lake))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _LakeCollector:
    """Reads the committer's counters when scraped (nothing to keep in sync)."""

    def __init__(self, lake: Any):
        self.lake = lake

    def describe(self) -> list:
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from lakeml.storage.retry import retry_stats

        committer = self.lake.committer
        depth = GaugeMetricFamily("lakeml_committer_pending_rows", "Rows logged but not yet committed, by table",
                                  labels=["table"])
        for table, n in sorted(committer.pending_by_table().items()):
            depth.add_metric([table], n)
        yield depth
        stats = committer.stats
        for name, doc, value in (
                ("lakeml_commits", "Iceberg commits made by this process's committer", stats.commits),
                ("lakeml_rows_committed", "Rows committed by this process's committer", stats.rows),
                ("lakeml_commit_retries", "Commit attempts retried (conflicts, storage errors)", stats.retries),
                ("lakeml_commit_duplicates_avoided", "Retried batches found already committed",
                 stats.duplicates_avoided),
                ("lakeml_rows_quarantined", "Rows set aside because they could not be stored", stats.quarantined)):
            yield CounterMetricFamily(name, doc, value=value)
        retries = CounterMetricFamily("lakeml_storage_retries", "Retry events of this process by operation and kind "
                                      "(retries, gave_up, slow)", labels=["what", "event"])
        for what, row in sorted(retry_stats().items()):
            for event, n in sorted(row.items()):
                retries.add_metric([what, event], n)
        yield retries
