"""Metric history through the in-memory point cache equals DuckDB's answer, and stays current."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import subprocess
import sys

import pyarrow as pa
import pytest

import lakeml
from lakeml.query import locations
from lakeml.query.pointcache import POINTS, PointCache, index_points


@contextlib.contextmanager
def no_cache():
    """The point cache off inside the block: the engine then asks DuckDB."""
    saved, POINTS.max_bytes = POINTS.max_bytes, 0
    try:
        yield
    finally:
        POINTS.max_bytes = saved


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def raw_lake(request, tmp_path):
    """Like ``lake`` (file, then moto S3) but without automatic compaction: runs span many files."""
    from tests.conftest import s3_lake_kwargs

    kw = {"commit_interval": 0.2, "commit_deadline": 30, "lakeml.maintenance.auto": "false"}
    if request.param == "file":
        lk = lakeml.connect(warehouse=tmp_path / "wh", **kw)
    else:
        server, bucket = request.getfixturevalue("s3_bucket")
        lk = lakeml.connect(**kw, **s3_lake_kwargs(server, bucket, tmp_path))
    yield lk
    lk.close()


def _messy(lake) -> list[str]:
    """Runs spread over several commits and files, out of order, with repeated steps, NaN and inf."""
    ids = [lake.create_run("cache", run_name=f"r{i}").run_id for i in range(6)]
    for commit in range(4):
        for i, rid in enumerate(ids):
            for step in (7, 3, 5):  # logged out of step order
                lake.log_metric(rid, "loss", 1.0 / (commit + step + i + 1), step=step + 10 * commit)
            lake.log_metric(rid, "acc", float("nan") if i == 2 else 0.1 * commit, step=0)  # same step again
            lake.log_metric(rid, "z", math.inf, step=commit)
        lake.flush()
    return ids


def _rows(df) -> list:
    return [tuple("nan" if isinstance(x, float) and math.isnan(x) else x for x in r) for r in df.rows()]


def test_cached_history_equals_duckdb(raw_lake):
    lake = raw_lake
    ids = _messy(lake)
    POINTS.clear()
    cached = {(r, k): _rows(lake.get_metric_history(r, k)) for r in ids for k in (None, "loss", "acc", "nope")}
    batch = _rows(lake.metric_histories(ids + ids[:2], "loss"))
    batch_all = _rows(lake.metric_histories(ids))
    assert len(POINTS) > 0  # the cache answered
    with lake.engine.lock:
        assert len(lake.engine.history.plan([ids[0]])[ids[0]]) == 4  # one file per commit
    with no_cache():
        for (r, k), rows in cached.items():
            assert rows == _rows(lake.get_metric_history(r, k)), (r, k)
        assert batch == _rows(lake.metric_histories(ids, "loss"))
        assert batch_all == _rows(lake.metric_histories(ids))
    assert len(cached[(ids[0], None)]) == 4 * 3 + 4 + 4
    steps = [s for _, s, _, _ in cached[(ids[0], "loss")]]
    assert steps == sorted(steps) and len(steps) == 12
    assert cached[(ids[0], "nope")] == []
    assert lake.get_metric_history(ids[0]).schema == lake.get_metric_history(ids[0], "nope").schema


def test_history_sees_points_committed_by_another_process(tmp_path):
    wh = tmp_path / "wh"
    with lakeml.connect(warehouse=wh) as lake:
        run = lake.create_run("cache")
        lake.log_metric(run.run_id, "loss", 1.0, step=0)
        lake.flush()
        assert lake.get_metric_history(run.run_id, "loss")["step"].to_list() == [0]
        code = ("import lakeml, sys\n"
                "with lakeml.connect(warehouse=sys.argv[1]) as l:\n"
                "    l.log_metric(sys.argv[2], 'loss', 2.0, step=1)\n")
        subprocess.run([sys.executable, "-c", code, str(wh), run.run_id], check=True, timeout=120)
        assert lake.get_metric_history(run.run_id, "loss")["step"].to_list() == [0, 1]
        assert lake.metric_histories([run.run_id])["value"].to_list() == [1.0, 2.0]


def test_history_after_compaction_reads_the_new_files(tmp_path):
    file_lake = lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.maintenance.auto": "false"})
    ids = _messy(file_lake)
    before = {r: _rows(file_lake.get_metric_history(r)) for r in ids}
    old = set(file_lake.engine.tables.bound["metrics"].listing.files)
    file_lake.maintain(["metrics"])
    for r in ids:
        assert _rows(file_lake.get_metric_history(r)) == before[r]
    new = set(file_lake.engine.tables.bound["metrics"].listing.files)
    assert new and not (new & old)  # compaction replaced every file, and the lookups read the new ones
    assert all(p in POINTS._files for p in new)
    file_lake.close()


def test_sqlite_signature_tracks_every_commit(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh") as lake:
        lake.init()
        cat = lake.store.catalog
        first = locations.sqlite_signature(cat)
        assert first is not None
        assert locations.sqlite_signature(cat) == first  # reading changes nothing
        run = lake.create_run("sig")
        lake.log_metric(run.run_id, "m", 1.0)
        lake.flush()
        assert locations.sqlite_signature(cat) != first
        loc = locations.sql_catalog_locations(cat)[(lake.store.namespace, "metrics")]
        assert loc == lake.store.catalog.load_table(lake.store.identifier("metrics")).metadata_location


def test_sqlite_signature_is_none_in_wal_mode(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh") as lake:
        lake.init()
        db = lake.store.catalog.engine.url.database
        with sqlite3.connect(db) as c:
            c.execute("PRAGMA journal_mode=WAL")
        assert locations.sqlite_signature(lake.store.catalog) is None
        run = lake.create_run("wal")  # still correct without the shortcut
        lake.log_metric(run.run_id, "m", 3.0)
        lake.flush()
        assert lake.get_metric_history(run.run_id)["value"].to_list() == [3.0]


@pytest.mark.parametrize("catalog", ["sqlite", "sqlite-wal", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_freshness_check_is_one_catalog_query_for_all_tables(tmp_path, catalog, request):
    """The embedded SQLite file is read with stdlib sqlite3 and re-read only when its change counter
    moved; a SQL catalog without that counter (PostgreSQL, or SQLite in WAL mode behind SQLAlchemy)
    is asked once per refresh for every table, never once per table. Both see new commits."""
    from sqlalchemy import event

    from lakeml.query.engine import DuckEngine

    db = tmp_path / "catalog.db"
    kind = "sqlite" if catalog == "sqlite" else "sql"
    if catalog == "postgres":
        from tests.conftest import postgres_lake_kwargs

        props = postgres_lake_kwargs(request.getfixturevalue("postgres_db"), tmp_path)
    else:
        uri = f"sqlite:///{db}" if catalog == "sqlite" else f"sqlite+pysqlite:///{db}"
        props = {"uri": uri, "warehouse": (tmp_path / "wh").as_uri()}
    with lakeml.connect(**props) as writer:
        writer.init()
        if catalog == "sqlite-wal":
            with sqlite3.connect(db) as c:
                c.execute("PRAGMA journal_mode=WAL")
        statements: list[str] = []
        event.listen(writer.store.catalog.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *a: statements.append(statement))
        for plain in (False, True):
            eng = DuckEngine(writer.store, cached=not plain)
            try:
                assert eng.locations.kind == kind
                count = "SELECT count(*) FROM lakeml.runs"
                before = eng.query(count)[0][0].as_py()
                statements.clear()
                asked = eng.locations.queries
                assert eng.query(count)[0][0].as_py() == before
                catalog_reads = [st for st in statements if "iceberg_tables" in st]
                # SQLite file unchanged: no query at all; no change counter: exactly one, for all 14 tables
                assert eng.locations.queries - asked == (0 if kind == "sqlite" else 1)
                assert len(catalog_reads) == (0 if kind == "sqlite" else 1)
                run = writer.create_run("fresh")
                writer.set_terminated(run.run_id)
                writer.flush()
                asked = eng.locations.queries
                assert eng.query(count)[0][0].as_py() == before + 2  # RUNNING and FINISHED events
                assert eng.locations.queries - asked == 1
            finally:
                eng.close()


def test_index_points_sorts_unsorted_files_and_slices_by_run():
    ts = pa.array([3, 1, 2, 1, 5], pa.timestamp("us", tz="UTC"))
    t = pa.table({"run_id": ["b", "a", "b", "a", "a"], "key": ["x", "x", "x", "w", "x"],
                  "step": pa.array([1, 2, 1, 9, 0], pa.int64()), "value": [1.0, 2.0, 3.0, 4.0, 5.0],
                  "timestamp": ts})
    fp = index_points(t)
    assert fp.run("a").column("value").to_pylist() == [4.0, 5.0, 2.0]  # w@9, x@0, x@2
    assert fp.run("b").column("value").to_pylist() == [3.0, 1.0]  # same step: by timestamp
    assert fp.run("c") is None and "run_id" not in fp.table.column_names


def test_point_cache_is_bounded_least_recently_used():
    t = pa.table({"run_id": ["a"] * 1000, "key": ["k"] * 1000, "step": pa.array(range(1000), pa.int64()),
                  "value": [0.0] * 1000, "timestamp": pa.array(range(1000), pa.timestamp("us", tz="UTC"))})
    size = index_points(t).nbytes
    cache = PointCache(max_bytes=size * 2)
    loads = []

    def load(path):
        loads.append(path)
        return index_points(t)
    for p in ("f1", "f2", "f1", "f3", "f1", "f2"):
        cache.get(p, load)
    assert loads == ["f1", "f2", "f3", "f2"]  # f2 was the least recently used when f3 came in
    assert len(cache) == 2 and not cache.fits(10**9)


# -- the stored metric summary --------------------------------------------------------------------
BOARD = "SELECT run_id, key, value, step, timestamp, min_value, max_value, count FROM lakeml.metric_latest"


def _plain_summary(lake) -> list:
    """metric_latest by its plain SQL definition (no in-memory summary), sorted."""
    from lakeml.query.engine import DuckEngine

    eng = DuckEngine(lake.store, cached=False)
    try:
        return sorted(_rows(__import__("polars").from_arrow(eng.query(BOARD))))
    finally:
        eng.close()


def test_stored_summary_is_restored_and_merged(tmp_path, monkeypatch):
    from lakeml.query import summary_store

    monkeypatch.setenv("LAKEML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LAKEML_SUMMARY_PERSIST_SECONDS", "0")  # store after every build
    wh = tmp_path / "wh"
    with lakeml.connect(warehouse=wh, **{"lakeml.maintenance.auto": "false"}) as lake:
        ids = _messy(lake)
        first = sorted(_rows(lake.sql(BOARD)))
        tbl = lake.engine.tables.bound["metrics"].table
        stored = summary_store.summary_path(tbl)
        assert stored.is_file() and first == _plain_summary(lake)

    restored = []
    real = summary_store.restore
    monkeypatch.setattr(summary_store, "restore", lambda *a: restored.append(real(*a)) or restored[-1])
    with lakeml.connect(warehouse=wh, **{"lakeml.maintenance.auto": "false"}) as lake:
        assert sorted(_rows(lake.sql(BOARD))) == first and restored == [True]
        lake.log_metric(ids[0], "loss", -1.0, step=999)  # newer than anything stored
        lake.log_metric(ids[1], "brand-new", 5.0)
        lake.flush()
    with lakeml.connect(warehouse=wh, **{"lakeml.maintenance.auto": "false"}) as lake:
        now = sorted(_rows(lake.sql(BOARD)))
        assert restored == [True, True] and now == _plain_summary(lake) and now != first
        lake.maintain(["metrics"])  # compaction: the stored files are gone, the summary is rebuilt
        assert sorted(_rows(lake.sql(BOARD))) == now
    with lakeml.connect(warehouse=wh) as lake:
        assert sorted(_rows(lake.sql(BOARD))) == now


def test_broken_or_foreign_stored_summary_is_ignored(tmp_path, monkeypatch):
    from lakeml.query import summary_store

    monkeypatch.setenv("LAKEML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LAKEML_SUMMARY_PERSIST_SECONDS", "0")
    wh = tmp_path / "wh"
    with lakeml.connect(warehouse=wh) as lake:
        _messy(lake)
        good = sorted(_rows(lake.sql(BOARD)))
        stored = summary_store.summary_path(lake.engine.tables.bound["metrics"].table)
    stored.write_bytes(b"PAR1 not really parquet")
    with lakeml.connect(warehouse=wh) as lake:
        assert sorted(_rows(lake.sql(BOARD))) == good
    import pyarrow.parquet as pq  # a well-formed file that claims another table

    data = pq.read_table(stored)
    meta = data.schema.metadata
    forged = meta[b"lakeml.summary"].replace(b'"table_uuid": "', b'"table_uuid": "0')
    pq.write_table(data.replace_schema_metadata({b"lakeml.summary": forged}).slice(0, 1), stored)
    with lakeml.connect(warehouse=wh) as lake:
        assert sorted(_rows(lake.sql(BOARD))) == good


def test_summary_survives_compaction_without_a_rebuild(tmp_path, monkeypatch):
    """After a compaction the summary merges only the files appended since, and stays exact."""
    from lakeml.query.cache import LatestCache

    with lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.maintenance.auto": "false"}) as lake:
        ids = _messy(lake)
        lake.sql(BOARD)  # the summary is built
        builds = []
        real = LatestCache.create
        monkeypatch.setattr(LatestCache, "create", lambda self, con: builds.append(1) or real(self, con))
        lake.log_metric(ids[3], "loss", 42.0, step=10_000)  # appended, then compacted away before the next query
        lake.flush()
        lake.maintain(["metrics"])
        lake.log_metric(ids[4], "late", 1.0)
        lake.flush()
        assert sorted(_rows(lake.sql(BOARD))) == _plain_summary(lake)
        assert builds == []
        assert ("loss", 42.0) in [(k, v) for _, k, v, *_ in _rows(lake.sql(BOARD))]


def test_summary_rebuilds_when_rows_are_deleted(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.maintenance.auto": "false"}) as lake:
        ids = _messy(lake)
        before = sorted(_rows(lake.sql(BOARD)))
        tbl = lake.store.catalog.load_table(lake.store.identifier("metrics"))
        tbl.delete(f"run_id == '{ids[0]}'")  # another engine deletes rows: not an append, not a replace
        after = sorted(_rows(lake.sql(BOARD)))
        assert after == _plain_summary(lake) and len(after) == len(before) - 3
        assert ids[0] not in {r[0] for r in after}
