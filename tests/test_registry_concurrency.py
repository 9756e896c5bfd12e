"""Concurrent registration from real processes on a real catalog: version numbers stay unique and
gap-free, every alias change replaces exactly the version the alias pointed at, nothing is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import lakeml
from tests.conftest import s3_lake_kwargs
from tests.workers.lakes import lake_spec

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys
from tests.workers.lakes import open_spec
spec, run_id, n, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lake = open_spec(spec)
lake.registry.state()  # open the catalog before the start line
print("ready", flush=True)
assert sys.stdin.readline() == "go\n"  # the start gate: blocks until every worker is ready
versions = []
for i in range(n):
    mv = lake.register_model("churn", run_id=run_id, artifact_path="model")
    versions.append(mv.version)
    if (i + 1) % every == 0:
        lake.set_alias("churn", "champion", mv.version)
print(json.dumps({"versions": versions, "stats": lake.registry.ledger.stats}))
lake.close()
"""


def run_workers(lake, tmp_path: Path, procs: int, each: int, alias_every: int) -> tuple[list, list]:
    run = lake.create_run("concurrency")
    lake.log_model(run.id, LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    lake.set_terminated(run.id, "FINISHED")
    lake.init()
    spec = json.dumps(lake_spec(lake))
    errs = [tmp_path / f"worker{i}.err" for i in range(procs)]  # files, so a chatty worker never blocks
    workers = []
    for err in errs:
        with err.open("w") as stderr:
            workers.append(subprocess.Popen([sys.executable, "-c", WORKER, spec, run.id, str(each), str(alias_every)],
                                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                            text=True))
    # A start barrier: every worker has opened the lake and said "ready" before any is told "go".
    for w, err in zip(workers, errs):
        line = w.stdout.readline()
        if line != "ready\n":
            w.wait(timeout=60)
            pytest.fail(f"worker did not get ready (exit {w.returncode}): {line!r} {err.read_text()[-3000:]}")
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    out = []
    for w, err in zip(workers, errs):
        stdout, _ = w.communicate(timeout=300)
        assert w.returncode == 0, err.read_text()[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return [o["versions"] for o in out], [o["stats"] for o in out]


def check(lake, per_process: list[list[int]], total: int) -> None:
    got = [v for vs in per_process for v in vs]
    assert sorted(got) == list(range(1, total + 1))  # none lost, none duplicated, no gaps
    for vs in per_process:
        assert vs == sorted(vs)  # each process sees its own versions increase
    # the registry state, the ledger and the projection agree
    assert [mv.version for mv in lake.list_model_versions("churn")] == list(range(1, total + 1))
    evs = lake.registry_events("churn")
    assert [e.event_seq for e in evs] == list(range(1, len(evs) + 1))
    assert sum(e.event_type == "version_registered" for e in evs) == total
    assert sum(e.event_type == "model_created" for e in evs) == 1
    # an alias points at one version at a time: each change replaced exactly the previous target
    alias_evs = [e for e in evs if e.event_type == "alias_set"]
    prev = None
    for e in alias_evs:
        assert (e.before or {}).get("version") == prev
        prev = e.after["version"]
    assert lake.get_model_version("churn@champion").version == prev
    t = lake.sql_arrow("SELECT count(*) AS n, count(DISTINCT version) AS d, min(version) AS lo, max(version) AS hi "
                       "FROM lakeml.model_versions")
    assert t.to_pylist() == [{"n": total, "d": total, "lo": 1, "hi": total}]
    t = lake.sql_arrow("SELECT count(*) AS n, count(DISTINCT event_seq) AS d FROM lakeml.registry_events")
    assert t.to_pylist() == [{"n": len(evs), "d": len(evs)}]


@pytest.mark.slow
def test_four_processes_register_25_versions_each_on_file(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.2)
    try:
        versions, stats = run_workers(lake, tmp_path, procs=4, each=25, alias_every=10)
        check(lake, versions, 100)
        assert sum(s["conflicts"] for s in stats) > 0  # the processes really raced
    finally:
        lake.close()


@pytest.mark.s3
def test_concurrent_registration_on_s3(tmp_path, s3_bucket):
    server, bucket = s3_bucket
    lake = lakeml.connect(commit_interval=0.2, **s3_lake_kwargs(server, bucket, tmp_path))
    try:
        versions, _ = run_workers(lake, tmp_path, procs=3, each=5, alias_every=2)
        check(lake, versions, 15)
    finally:
        lake.close()
