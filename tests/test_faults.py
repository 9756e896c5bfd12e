"""Fault tolerance against storage: lakeml talks to real S3 servers through tests/faultproxy.py.

Nothing acknowledged is lost and nothing lands twice, whether requests are reset, answered with
500/503, delayed, or executed with their response lost; when storage stays down past the deadline,
flush() raises a clear CommitError and keeps the rows for later.
"""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlparse

import pytest

import lakeml
from lakeml.errors import CommitError
from tests.faultproxy import FaultProxy


def _proxied_lake(server, bucket, tmp_path, proxy, **kw):
    props = {**server.props(bucket, "wh"), "s3.endpoint": proxy.endpoint}
    return lakeml.connect(uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"s3://{bucket}/wh",
                          commit_interval=kw.pop("commit_interval", 0.1), commit_deadline=kw.pop("commit_deadline", 120),
                          **props, **kw)


def _direct_metrics(server, bucket, tmp_path, run_id: str):
    """The run's points read back with plain pyiceberg, straight from the server (no proxy)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import EqualTo

    cat = SqlCatalog("lakeml", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"s3://{bucket}/wh",
                     **server.props(bucket, "wh"))
    return cat.load_table("lakeml.metrics").scan(row_filter=EqualTo("run_id", run_id)).to_arrow()


def _digest(steps, values) -> str:
    h = hashlib.sha256()
    for s, v in sorted(zip(steps, values)):
        h.update(f"{s}:{v!r};".encode())
    return h.hexdigest()


@pytest.mark.s3
def test_100k_points_land_through_10_percent_faults(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    up = urlparse(server.endpoint)
    n = 100_000
    with FaultProxy(up.hostname, up.port, rate=0.10, seed=7, delay=0.5) as proxy:
        # commits happen only at the explicit flushes: 20 of them, each through the faulty proxy
        lake = _proxied_lake(server, bucket, tmp_path, proxy, commit_interval=3600,
                             **{"lakeml.maintenance.auto": "false"})
        try:
            run = lake.create_run("faults")
            lake.flush()
            before = lake.committer.stats.commits
            for chunk in range(20):
                for i in range(chunk * 5000, (chunk + 1) * 5000):
                    lake.log_metric(run.run_id, "loss", i * 0.25 - 7.0, step=i)
                lake.flush()
            metric_commits = lake.committer.stats.commits - before
            lake.set_terminated(run.run_id)  # flushes
        finally:
            lake.close()
        faults = sum(v for k, v in proxy.counts.items() if k != "requests")
    assert metric_commits == 20, metric_commits
    assert faults >= 10, proxy.counts
    data = _direct_metrics(server, bucket, tmp_path, run.run_id)
    steps, values = data.column("step").to_pylist(), data.column("value").to_pylist()
    assert len(steps) == n and len(set(steps)) == n
    assert _digest(steps, values) == _digest(range(n), [i * 0.25 - 7.0 for i in range(n)])


@pytest.mark.s3
def test_storage_down_past_the_deadline_raises_and_keeps_the_rows(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    up = urlparse(server.endpoint)
    with FaultProxy(up.hostname, up.port, rate=0.0) as proxy:
        lake = _proxied_lake(server, bucket, tmp_path, proxy, commit_interval=3600, commit_deadline=2,
                             **{"s3.connect-timeout": "1", "s3.request-timeout": "2",
                                # 3 tries per request instead of lakeml's 8: the outage is reached sooner
                                "s3.retry-strategy-impl": "pyarrow.fs.AwsStandardS3RetryStrategy",
                                "lakeml.maintenance.auto": "false"})
        try:
            run = lake.create_run("outage")
            lake.flush()
            proxy.down = True
            for i in range(500):
                lake.log_metric(run.run_id, "loss", float(i), step=i)
            with pytest.raises(CommitError, match=r"could not commit .* rows to lakeml\.metrics within 2s") as err:
                lake.flush(timeout=2)
            assert "kept and retried" in str(err.value)
            assert lake.committer.pending_rows() == 500  # nothing dropped
            assert sum(s.read().num_rows for s in lake.committer.spool.segments()) == 500  # and durable
            proxy.down = False
            lake.flush(timeout=60)
            assert lake.committer.spool.segments() == []
        finally:
            lake.close()
    data = _direct_metrics(server, bucket, tmp_path, run.run_id)
    assert sorted(data.column("step").to_pylist()) == list(range(500))


@pytest.mark.seaweedfs
def test_lost_commit_responses_do_not_duplicate_rows(seaweed_table_bucket):
    """The REST catalog executes the commit but the answer is lost: the retry finds the batch id."""
    server, table_bucket = seaweed_table_bucket
    props = server.catalog_props(table_bucket)
    up = urlparse(props["uri"])

    def commits(method: str, path: str) -> bool:
        return method == "POST" and "/tables/" in path

    with FaultProxy(up.hostname, up.port, rate=0.5, seed=3, faults=("drop_after",), match=commits) as proxy:
        lake = lakeml.connect(commit_interval=0.1, commit_deadline=60,
                              **{**props, "uri": proxy.endpoint, "oauth2-server-uri": f"{proxy.endpoint}/v1/oauth/tokens",
                                 "lakeml.namespace": f"ns_{uuid.uuid4().hex[:8]}"})
        try:
            run = lake.create_run("lost-acks")
            for j in range(10):
                for i in range(100):
                    lake.log_metric(run.run_id, "loss", float(j * 100 + i), step=j * 100 + i)
                lake.flush()
            stats = lake.committer.stats
            ns = lake.config.namespace
        finally:
            lake.close()
    assert proxy.counts["drop_after"] >= 3
    assert stats.duplicates_avoided >= 3  # each lost answer was a commit that had landed
    from pyiceberg.catalog import load_catalog

    data = load_catalog("direct", **props).load_table(f"{ns}.metrics").scan().to_arrow()
    steps = sorted(data.column("step").to_pylist())
    assert steps == list(range(1000))
