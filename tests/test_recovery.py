"""Crash-safe logging end to end: real processes are SIGKILLed; recovery commits what they acknowledged.

A child logs metric points in chunks; after each ``lake.sync()`` (its spool fsync point) it prints
``acked <n>``: points 0..n-1 are acknowledged. The test kills it with SIGKILL at some point, then
recovers (a new client in the background, or ``lake.recover()`` / ``lakeml recover``) and reads the
table back with plain pyiceberg: every acknowledged point is there exactly once, and the run is
KILLED with its last-seen time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

import lakeml
from lakeml.storage.spool import claim_dead_owners, spool_root
from tests.workers.lakes import lake_spec, plain_catalog, reopen

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from tests.workers.lakes import open_spec

spec, mode, interval, limit = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lake = open_spec(spec, commit_interval=interval, commit_deadline=60)
run = lake.create_run("crash", run_name="doomed")
print("run", run.run_id, flush=True)
if mode == "unmarked":  # die after committing but before the spool segments are deleted
    lake.committer.spool.mark_committed = lambda batch: None
step = 0
while step < limit:
    for _ in range(250):
        lake.log_metric(run.run_id, "loss", step * 0.5, step=step)
        step += 1
    lake.sync()
    print("acked", step, flush=True)
if mode == "unmarked":
    lake.flush()
    print("committed", step, flush=True)
elif mode == "idle":
    print("idle", flush=True)
sys.stdin.readline()  # wait to be killed
"""


def start_child(tmp_path, lake, mode: str, interval: float, limit: int, py: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen([py, str(script), json.dumps(lake_spec(lake)), mode, str(interval), str(limit)],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def read_until(proc: subprocess.Popen, word: str, at_least: int = 0) -> tuple[str, int]:
    """Read the child's lines until ``word`` (with a number >= ``at_least``); returns (run id, last acked)."""
    run_id, acked = None, 0
    for line in proc.stdout:
        parts = line.split()
        if parts[0] == "run":
            run_id = parts[1]
        elif parts[0] == "acked":
            acked = int(parts[1])
        if parts[0] == word and (len(parts) < 2 or int(parts[1]) >= at_least):
            return run_id, acked
    raise AssertionError(f"child exited early: {proc.stderr.read()[-3000:]}")


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.close()


def steps_of(lake, run_id: str) -> Counter:
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import EqualTo

    try:
        tbl = plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.metrics")
    except NoSuchTableError:
        return Counter()
    data = tbl.scan(row_filter=EqualTo("run_id", run_id)).to_arrow()
    return Counter(data.column("step").to_pylist())


def status_of(lake, run_id: str) -> dict:
    tbl = plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.runs")
    rows = [r for r in tbl.scan().to_arrow().to_pylist() if r["run_id"] == run_id]
    return max(rows, key=lambda r: (r["event_time"], r["event_seq"]))


def test_sigkill_mid_run_then_recovery_on_connect(lake, tmp_path, py):
    child = start_child(tmp_path, lake, "log", 0.05, 10**9, py)
    try:
        run_id, acked = read_until(child, "acked", at_least=20_000)
    finally:
        kill(child)
    assert acked >= 20_000
    root = spool_root(lake.config)
    leftover = [s for owner in root.iterdir() if owner.name.startswith("owner-")  # (a .tmp- file was
                for s in owner.iterdir() if s.suffix == ".arrow" and not s.name.startswith(".")]  # never acked)

    other = reopen(lake)  # the next lakeml process on this machine: recovers in the background
    try:
        report = other.recover()  # waits for the background pass and reports it
        assert len(report.owners) == 1 and report.owners[0].error is None
        assert report.runs_killed == [run_id]
        assert report.batches + report.owners[0].already_committed >= len(leftover)
    finally:
        other.close()

    steps = steps_of(lake, run_id)
    assert all(steps[s] == 1 for s in range(acked)), "an acknowledged point is missing or duplicated"
    assert max(steps.values()) == 1  # nothing beyond the acknowledged ones is duplicated either
    ev = status_of(lake, run_id)
    assert ev["status"] == "KILLED" and ev["end_time"] is not None and ev["end_time"] >= ev["start_time"]
    assert "killed" in ev["error"]
    assert not list(claim_dead_owners(root))  # the dead spool is gone


def test_killed_after_commit_before_the_spool_was_cleared_lands_once(file_lake, tmp_path, py):
    lake = file_lake
    child = start_child(tmp_path, lake, "unmarked", 3600, 5_000, py)
    try:
        run_id, acked = read_until(child, "committed")
    finally:
        kill(child)
    assert sum(steps_of(lake, run_id).values()) == 5_000  # committed, yet still in the spool
    report = lake.recover()
    owner = report.owners[0]
    assert owner.already_committed >= 1 and owner.rows == 0  # found by batch id: nothing appended twice
    steps = steps_of(lake, run_id)
    assert sorted(steps) == list(range(5_000)) and max(steps.values()) == 1


def test_exactly_once_when_the_batch_snapshots_were_expired(file_lake, tmp_path, py):
    from datetime import datetime, timedelta, timezone

    lake = file_lake
    child = start_child(tmp_path, lake, "unmarked", 3600, 2_000, py)
    try:
        run_id, _ = read_until(child, "committed")
    finally:
        kill(child)
    # more commits, then expire everything time travel lets go: the dead writer's snapshots are gone
    other = reopen(lake, **{"lakeml.spool-dir": "off"})  # no spool: it recovers nothing by itself
    try:
        r = other.create_run("later")
        for i in range(12):
            other.log_metric(r.run_id, "x", float(i), step=i)
            other.committer.flush()
        other.maintain(now=datetime.now(timezone.utc) + timedelta(days=8), compact=False, orphans=False)
    finally:
        other.close()
    tbl = lake.store.reload("metrics")
    writers = [s.summary.additional_properties.get("lakeml.writer") or "" for s in tbl.metadata.snapshots]
    assert writers and not any(w.endswith(f":{child.pid}") for w in writers)
    report = lake.recover()  # falls back to looking the rows up
    assert report.owners[0].already_committed >= 1 and report.owners[0].rows == 0
    steps = steps_of(lake, run_id)
    assert sorted(steps) == list(range(2_000)) and max(steps.values()) == 1


def test_a_live_process_spool_is_never_taken(file_lake, tmp_path, py):
    lake = file_lake
    child = start_child(tmp_path, lake, "idle", 3600, 1_000, py)
    try:
        run_id, acked = read_until(child, "idle")
        report = lake.recover()
        assert report.owners == []  # alive: its flock is held
        assert sum(steps_of(lake, run_id).values()) == 0
    finally:
        kill(child)
    report = lake.recover()
    assert report.rows == acked + 2 and acked == 1_000  # + the experiment and the run event
    assert report.runs_killed == [run_id]
    assert sorted(steps_of(lake, run_id)) == list(range(1_000))


def test_lakeml_recover_command(tmp_path, py):
    from lakeml.cli.main import app

    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh)
    child = start_child(tmp_path, lake, "log", 3600, 3_000, py)
    try:
        run_id, acked = read_until(child, "acked", at_least=3_000)
    finally:
        kill(child)
    lake.close()
    runner = CliRunner()
    env = {"LAKEML_WAREHOUSE": str(wh)}
    res = runner.invoke(app, ["recover", "-o", "json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"] + sum(o["already_committed"] for o in out["owners"]) > 0
    assert run_id in out["runs_killed"]
    res = runner.invoke(app, ["recover"], env=env)
    assert res.exit_code == 0 and "nothing to recover" in res.stdout
    lake = lakeml.connect(warehouse=wh)
    try:
        assert sorted(steps_of(lake, run_id)) == list(range(3_000))
        assert lake.get_run(run_id).status.value == "KILLED"
    finally:
        lake.close()
