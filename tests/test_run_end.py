"""Ending a run hands its rows to the committer (the fsynced spool) and returns; ``wait=True``,
``LAKEML_SYNC_END=1`` and ``end_run(wait=True)`` wait for Iceberg. ``Lake.sync`` never claims a
durability it cannot give, and ``import lakeml`` leaves ``sys.excepthook`` alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakeml
from lakeml import RunStatus, StorageError
from tests.workers.lakes import lake_spec, reopen

ROOT = Path(__file__).resolve().parent.parent

# Neither background thread runs on its own (commits every hour, spools every ~11 days): only the
# run's end can have put its rows in the spool before the process dies without any exit handler.
CHILD = r"""
import json, os, sys
from tests.workers.lakes import open_spec

lake = open_spec(json.loads(sys.argv[1]), commit_interval=3600, **{"lakeml.spool-interval-ms": "1000000000"})
run = lake.create_run("ended", run_name="handed-off")
lake.log_param(run.run_id, "lr", 0.1)
lake.log_metric(run.run_id, "loss", 0.25, step=7)
lake.set_terminated(run.run_id)
print(run.run_id, flush=True)
os._exit(0)  # a crash right after the end returned: no flush, no exit handler
"""


def test_a_crash_after_a_run_ended_loses_nothing(lake, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = subprocess.run([sys.executable, str(script), json.dumps(lake_spec(lake))], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = out.stdout.split()[0]
    other = reopen(lake)
    try:
        report = other.recover(timeout=60)
        assert report.rows > 0, "the ended run's rows were in the dead process's spool"
        got = other.get_run(run_id)
        assert (got.status, got.params, got.metrics) == (RunStatus.FINISHED, {"lr": "0.1"}, {"loss": 0.25})
        assert run_id not in report.runs_killed, "the run had ended: recovery must not mark it KILLED"
    finally:
        other.close()


def test_an_end_hands_off_and_wait_commits(lake, monkeypatch):
    monkeypatch.delenv("LAKEML_SYNC_END", raising=False)
    stats = lake.committer.stats
    run = lake.create_run("ends")
    lake.log_metric(run.run_id, "m", 1.0)
    before = stats.handoffs
    lake.set_terminated(run.run_id)
    assert stats.handoffs == before + 1, "a default end hands its rows to the committer"
    assert lake.get_run(run.run_id).status is RunStatus.FINISHED  # read-your-writes in this process

    run2 = lake.create_run("ends")
    before = stats.handoffs
    lake.set_terminated(run2.run_id, wait=True)
    assert stats.handoffs == before and lake.committer.pending_rows() == 0, "wait=True returns once committed"
    assert reopen_status(lake, run2.run_id) is RunStatus.FINISHED

    monkeypatch.setenv("LAKEML_SYNC_END", "1")
    run3 = lake.create_run("ends")
    lake.set_terminated(run3.run_id, "FAILED", error="boom")
    assert stats.handoffs == before and lake.committer.pending_rows() == 0, "LAKEML_SYNC_END=1 waits"
    assert reopen_status(lake, run3.run_id) is RunStatus.FAILED


def reopen_status(lake, run_id: str) -> RunStatus:
    """The run's status as another client sees it (nothing of this client's buffers)."""
    other = reopen(lake)
    try:
        return other.get_run(run_id).status
    finally:
        other.close()


def test_fluent_ends(fluent_lake, monkeypatch):
    monkeypatch.delenv("LAKEML_SYNC_END", raising=False)
    stats = fluent_lake.committer.stats
    before = stats.handoffs
    with lakeml.start_run(experiment="fluent-ends") as run:
        lakeml.log_metric("m", 1.0)
    assert stats.handoffs == before + 1, "leaving the block hands off"
    active = lakeml.start_run(experiment="fluent-ends")
    active.end(wait=True)
    assert stats.handoffs == before + 1 and fluent_lake.committer.pending_rows() == 0
    lakeml.start_run(experiment="fluent-ends")
    lakeml.end_run(wait=True)
    assert stats.handoffs == before + 1 and fluent_lake.committer.pending_rows() == 0
    assert fluent_lake.get_run(run.id).status is RunStatus.FINISHED
    assert reopen_status(fluent_lake, active.id) is RunStatus.FINISHED


def test_sync_without_a_spool_raises(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.spool-dir": "off"}) as lake:
        run = lake.create_run("nospool")
        lake.log_metric(run.run_id, "m", 1.0)
        with pytest.raises(StorageError, match="spool"):
            lake.sync()
        assert lake.get_run(run.run_id).metrics == {"m": 1.0}, "the rows stay queued and are committed"


def test_import_leaves_excepthook_alone_until_a_run_starts(tmp_path):
    code = ("import sys; before = sys.excepthook; import lakeml; print(sys.excepthook is before); "
            f"lakeml.set_lake(lakeml.connect(warehouse={str(tmp_path / 'wh')!r})); "
            "lakeml.start_run(experiment='hook'); hook = sys.excepthook; print(hook is not before); "
            "lakeml.end_run(); lakeml.start_run(experiment='hook'); print(sys.excepthook is hook)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["True", "True", "True"], out.stdout
