"""as_of: the lake's metadata as it was at a moment or at a snapshot."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from lakeml.errors import InvalidInputError


def _last_commit_ms(tables) -> int:
    """The timestamp of the newest snapshot of ``tables``: an explicit moment taken from the metadata."""
    return max(s.timestamp_ms for t in tables for s in t.snapshots())


def _at(ms: int) -> datetime:
    """Epoch milliseconds as an exact UTC datetime."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc) + timedelta(milliseconds=ms % 1000)


def _past(ms: int) -> None:
    """Return once the wall clock is past ``ms``, so the next snapshot is stamped later (times are in ms)."""
    while time.time_ns() // 1_000_000 <= ms:
        time.sleep(0.0005)


def _lake_tables(lake):
    cat = lake.store.catalog
    return [cat.load_table(ident) for ident in cat.list_tables("lakeml")]


def _finished(lake, exp, name, auc):
    r = lake.create_run(exp, run_name=name)
    lake.log_metric(r.run_id, "auc", auc)
    lake.set_terminated(r.run_id, wait=True)  # returns once committed
    return r.run_id


def test_leaderboard_as_it_was(file_lake):
    before_all = datetime(2000, 1, 1, tzinfo=timezone.utc)  # before any snapshot
    _finished(file_lake, "churn", "monday", 0.7)
    monday_ms = _last_commit_ms(_lake_tables(file_lake))
    monday = _at(monday_ms)
    runs_snap = file_lake.store.catalog.load_table("lakeml.runs").current_snapshot().snapshot_id
    _past(monday_ms)
    _finished(file_lake, "churn", "tuesday", 0.9)

    board = "SELECT run_name FROM lakeml.leaderboard WHERE metric = 'auc' ORDER BY rank_desc"
    assert file_lake.sql(board)["run_name"].to_list() == ["tuesday", "monday"]
    assert file_lake.sql(board, as_of=monday)["run_name"].to_list() == ["monday"]
    assert file_lake.sql(board, as_of=monday.isoformat().replace("+00:00", "Z"))["run_name"].to_list() == ["monday"]
    assert file_lake.sql(board, as_of=runs_snap)["run_name"].to_list() == ["monday"]
    assert file_lake.sql(board, as_of=str(runs_snap))["run_name"].to_list() == ["monday"]
    assert file_lake.sql("SELECT count(*) FROM lakeml.runs", as_of=before_all).item() == 0
    assert file_lake.sql("SELECT * FROM lakeml.metrics", as_of=before_all).columns[:2] == ["run_id", "key"]
    # and back to the present
    assert file_lake.sql(board)["run_name"].to_list() == ["tuesday", "monday"]
    assert file_lake.search_runs("churn").height == 2


def test_as_of_reaches_other_namespaces(file_lake):
    import pyarrow as pa

    cat = file_lake.store.catalog
    cat.create_namespace("sales")
    tbl = cat.create_table("sales.orders", schema=pa.schema([("id", pa.int64())]))
    tbl.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    first = tbl.current_snapshot()
    _past(first.timestamp_ms)
    tbl.append(pa.table({"id": pa.array([3], pa.int64())}))
    assert file_lake.sql("SELECT count(*) FROM sales.orders").item() == 3
    assert file_lake.sql("SELECT count(*) FROM sales.orders", as_of=first.snapshot_id).item() == 2
    assert file_lake.sql("SELECT count(*) FROM sales.orders", as_of=_at(first.timestamp_ms)).item() == 2


@pytest.mark.parametrize("bad", ["last monday", 1.5, True, [1]])
def test_bad_as_of(file_lake, bad):
    with pytest.raises(InvalidInputError, match="as_of"):
        file_lake.sql("SELECT 1", as_of=bad)


def test_unknown_snapshot_id(file_lake):
    _finished(file_lake, "e", "r", 0.1)
    with pytest.raises(InvalidInputError, match="no table of the lake has a snapshot"):
        file_lake.sql("SELECT 1", as_of=12345)
