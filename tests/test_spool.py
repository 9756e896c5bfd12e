"""The local spool: segments on disk, owner locks, and the committer's use of it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import lakeml
from lakeml.storage.committer import Batch
from lakeml.storage.spool import Spool, claim_dead_owners, has_dead_owners, list_segments, spool_root

ROOT = Path(__file__).resolve().parent.parent


def _batch(n: int = 3, table: str = "metrics") -> Batch:
    return Batch(table, pa.table({"x": list(range(n))}))


def test_segments_are_written_read_and_dropped(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert spool.dir is None  # nothing on disk before the first write
    b1, b2 = _batch(3), _batch(5, "runs")
    spool.write(b1)
    spool.write(b2)
    segs = spool.segments()
    assert [(s.table, s.batch_id) for s in segs] == [("metrics", b1.batch_id), ("runs", b2.batch_id)]
    assert segs[0].read().column("x").to_pylist() == [0, 1, 2]
    assert not any(p.name.startswith(".tmp") for p in spool.dir.iterdir())
    spool.mark_committed(b1)
    assert [s.batch_id for s in spool.segments()] == [b2.batch_id]
    spool.mark_committed(b2)
    owner = spool.dir
    spool.close()
    assert not owner.exists()  # a clean close leaves nothing behind


def test_a_live_owner_is_not_claimed_a_dead_one_is(tmp_path, py):
    root = tmp_path / "spool"
    mine = Spool(root)
    mine.write(_batch())
    assert list(claim_dead_owners(root)) == []  # our own flock is held
    # another process writes a segment and exits without closing its spool (as if killed)
    code = ("import sys, pyarrow as pa; from lakeml.storage.spool import Spool; from lakeml.storage.committer import Batch;"
            f"s = Spool({str(root)!r}); s.write(Batch('metrics', pa.table({{'x': [7]}}))); import os; os._exit(0)")
    subprocess.run([py, "-c", code], check=True, cwd=ROOT)
    assert has_dead_owners(root)
    dead = list(claim_dead_owners(root))
    assert len(dead) == 1 and dead[0].pid != os.getpid()
    assert [s.read().column("x").to_pylist() for s in dead[0].segments()] == [[7]]
    assert list(claim_dead_owners(root)) == []  # we hold its lock now: nobody else gets it
    dead[0].release(remove=True)
    assert not has_dead_owners(root)
    assert len(mine.segments()) == 1


def test_a_forked_child_gets_its_own_spool(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.write(_batch())
    parent_dir = spool.dir
    pid = os.fork()
    if pid == 0:  # child: its writes must not land in the parent's folder
        try:
            spool.write(_batch(2))
            os._exit(0 if spool.dir != parent_dir and len(list_segments(parent_dir)) == 1 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_sync_makes_logged_rows_durable_then_commit_clears_them(file_lake):
    lake = file_lake
    run = lake.create_run("spool")
    for i in range(100):
        lake.log_metric(run.run_id, "loss", float(i), step=i)
    assert lake.sync() == 102  # experiment + run event + 100 points
    segs = lake.committer.spool.segments()
    assert sum(s.read().num_rows for s in segs) == 102
    lake.flush()
    assert lake.committer.spool.segments() == []
    assert len(lake.get_metric_history(run.run_id, "loss")) == 100


def test_spool_location_and_switch(tmp_path, monkeypatch):
    lake = lakeml.connect(warehouse=tmp_path / "wh")
    try:
        assert spool_root(lake.config) == tmp_path / "wh" / ".lakeml-spool" / lake.config.namespace
    finally:
        lake.close()
    off = lakeml.connect(warehouse=tmp_path / "wh2", **{"lakeml.spool-dir": "off"})
    try:
        assert off.committer.spool is None
        run = off.create_run("x")
        off.log_metric(run.run_id, "m", 1.0)
        with pytest.raises(lakeml.errors.StorageError, match="spool is switched off.*lakeml.spool-dir"):
            off.sync()  # no spool: a crash would lose the rows, so sync() cannot promise anything
        assert off.committer.pending_rows() == 3  # they stay queued
        assert off.get_run(run.run_id).metrics["m"] == 1.0
    finally:
        off.close()
    elsewhere = lakeml.connect(warehouse=tmp_path / "wh3", **{"lakeml.spool-dir": str(tmp_path / "sp")})
    try:
        assert str(spool_root(elsewhere.config)).startswith(str(tmp_path / "sp"))
    finally:
        elsewhere.close()


def test_a_failing_spool_loses_nothing(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    lake = lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.spool-dir": str(blocker)})
    try:
        run = lake.create_run("x")
        lake.log_metric(run.run_id, "m", 2.0)
        with pytest.raises(lakeml.errors.StorageError, match="could not be written to the local spool"):
            lake.sync()  # the spool could not be written: a typed error, the rows stay queued
        assert lake.committer.pending_rows() == 3
        lake.flush()
        assert lake.get_run(run.run_id).metrics["m"] == 2.0
    finally:
        lake.close()


def test_spool_write_errors_are_typed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spool = Spool(blocker / "sub")
    with pytest.raises(lakeml.errors.LakemlError):
        spool.write(_batch())
