"""Table maintenance: compaction, manifest merging, snapshot expiry and orphan cleanup, on real tables.

Ages are driven by an explicit ``now`` (never by sleeping): a pass at "now + 8 days" sees every
file written during the test as older than the one-day safety age.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

import lakeml
from lakeml.errors import InvalidInputError
from lakeml.storage import compaction as C
from lakeml.storage.committer import rows_to_arrow
from lakeml.storage.maintenance import DAY_MS, HOUR_MS, RetentionPolicy, expire_snapshots, parse_duration_ms
from lakeml.storage.orphans import list_files, referenced
from lakeml.storage.tables import append
from tests.conftest import s3_lake_kwargs
from tests.workers.lakes import lake_spec, plain_catalog

ROOT = Path(__file__).resolve().parent.parent
RUNS = [f"{i:032x}" for i in range(1, 9)]  # 8 runs: several bucket partitions
LATER = datetime.now(timezone.utc) + timedelta(days=8)


def small_commits(lake, n: int, rows: int = 20, seed: int = 0, key: str = "loss",
                  expire_every: int | None = None) -> list[tuple]:
    """``n`` commits of ``rows`` metric points of one run each (one small file per commit), straight
    through pyiceberg; returns every row. ``expire_every``: expire snapshots (only) every so many
    commits, as a maintained lake would, so that commits stay fast (pyiceberg copies the whole
    metadata on every commit); it leaves every small data file in place."""
    rng = random.Random(seed)
    contract = lake.store.contracts["metrics"]
    tbl = lake.store.table("metrics")
    everything = []
    step = 0
    for i in range(n):
        run = rng.choice(RUNS)
        batch = []
        for _ in range(rows):
            batch.append((run, key, rng.uniform(-1e6, 1e6), step, 1_700_000_000_000_000 + step))
            step += 1
        append(tbl, rows_to_arrow(contract, batch), {"lakeml.batch-id": f"test-{seed}-{i}"})
        everything += batch
        if expire_every and (i + 1) % expire_every == 0:
            expire_snapshots(tbl, RetentionPolicy(keep_all_ms=0), int(time.time() * 1000))
    return everything


def table_rows(lake, table: str = "metrics") -> list[tuple]:
    """Every row of ``table`` read back with plain pyiceberg (no lakeml code), sorted."""
    data = plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.{table}").scan().to_arrow()
    cols = [data.column(c).to_pylist() for c in data.column_names]
    return sorted(tuple(_us(v) for v in row) for row in zip(*cols))


def _us(v):
    if isinstance(v, datetime):
        return (v - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return v


def checksum(rows: list[tuple]) -> str:
    h = hashlib.sha256()
    for r in sorted(rows):
        h.update(repr(r).encode())
    return h.hexdigest()


def plant_orphans(lake, table: str = "metrics") -> list[str]:
    """Files a crashed writer or a failed commit would leave: a data file, a manifest, a metadata file."""
    tbl = lake.store.table(table)
    fs, base = _fs(lake, tbl.location())
    paths = [f"{base}/data/run_id_bucket=0/00000-0-crashed-writer.parquet",
             f"{base}/metadata/snap-1-1-failed-commit.avro",
             f"{base}/metadata/99999-0000-stale.metadata.json"]
    for p in paths:
        fs.create_dir(p.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(p) as f:
            f.write(b"orphan bytes")
    return paths


def _fs(lake, uri: str):
    from lakeml.storage.objectstore import filesystem

    return filesystem(uri, lake.config.properties)


def exists(lake, path: str) -> bool:
    from pyarrow import fs as pafs

    fs, _ = _fs(lake, lake.store.table("metrics").location())
    return fs.get_file_info(path).type == pafs.FileType.File


def test_parse_duration():
    assert parse_duration_ms("7d") == 7 * DAY_MS
    assert parse_duration_ms("36h") == 36 * HOUR_MS
    assert parse_duration_ms("90s") == 90_000
    assert parse_duration_ms("250ms") == 250
    assert parse_duration_ms(0) == 0
    assert parse_duration_ms(timedelta(minutes=2)) == 120_000
    with pytest.raises(InvalidInputError, match="not a duration"):
        parse_duration_ms("a week")
    with pytest.raises(InvalidInputError, match="negative"):
        parse_duration_ms(-1)


def _snaps(stamps):
    snaps = [SimpleNamespace(snapshot_id=i, timestamp_ms=t, sequence_number=i) for i, t in enumerate(stamps)]
    head = SimpleNamespace(snapshot_id=len(stamps) - 1)
    return SimpleNamespace(snapshots=snaps, refs={"main": head})


def test_retention_keeps_what_time_travel_promises():
    now = 1_000 * DAY_MS
    # one snapshot a minute for the last 10 days
    stamps = [now - m * 60_000 for m in range(10 * 24 * 60, -1, -1)]
    md = _snaps(stamps)
    policy = RetentionPolicy(max_age_ms=7 * DAY_MS, min_snapshots=10, keep_all_ms=5 * 60_000, hourly_ms=DAY_MS)
    gone = set(policy.expirable(md, now))
    kept = [s for s in md.snapshots if s.snapshot_id not in gone]
    kept_ts = sorted(s.timestamp_ms for s in kept)
    # every snapshot of the last 5 minutes and the newest 10
    assert {s.timestamp_ms for s in md.snapshots[-10:]} <= set(kept_ts)
    assert all(t in kept_ts for t in stamps if now - t <= 5 * 60_000)
    # the last snapshot of each hour of the last day, of each day up to 7 days; nothing older
    for h in range(1, 24):
        bucket = [t for t in stamps if (now - t) > 5 * 60_000 and t // HOUR_MS == (now - h * HOUR_MS) // HOUR_MS]
        assert max(bucket) in kept_ts
    for d in range(2, 7):
        bucket = [t for t in stamps if DAY_MS < now - t <= 7 * DAY_MS and t // DAY_MS == (now - d * DAY_MS) // DAY_MS]
        assert max(bucket) in kept_ts
    assert len([t for t in kept_ts if t < now - 7 * DAY_MS]) == 1  # the state as of the window's start
    assert len(kept) < 24 + 8 + 10 + 6  # bounded, whatever the commit rate
    # "as of" any time in the window finds a snapshot at most an hour (last day) or a day older
    for ago in (30 * 60_000, 5 * HOUR_MS, 3 * DAY_MS, 6 * DAY_MS + HOUR_MS):
        t = now - ago
        best = max(x for x in kept_ts if x <= t)
        assert t - best <= (HOUR_MS if ago <= DAY_MS else DAY_MS) + 60_000
    # branch and tag heads are never expired, whatever their age
    assert 0 not in RetentionPolicy().expirable(SimpleNamespace(snapshots=md.snapshots, refs={
        "main": md.refs["main"], "old-tag": SimpleNamespace(snapshot_id=0)}), now)


def test_thousand_small_commits_then_maintenance(file_lake):
    lake = file_lake
    rows = small_commits(lake, 1000, expire_every=20)
    orphans = plant_orphans(lake)
    before = table_rows(lake)
    assert len(before) == len(rows) == 20_000 and checksum(before) == checksum(rows)
    tbl = lake.store.table("metrics")
    files_before = C.live_files(tbl)
    assert len(files_before) == 1000

    report = lake.maintain(now=LATER)

    t = report.table("metrics")
    assert t.files_before == 1000 and t.max_files_per_partition_before > 100
    parts = len(C.files_per_partition(files_before))
    assert t.files_after == parts and t.max_files_per_partition_after == 1  # one sorted file per partition
    assert t.snapshots_after <= 12  # min 10 kept (+ the maintenance ones): the rest is past 7 days
    assert t.orphans_deleted >= 1000 + len(orphans) and t.bytes_freed > 0
    # every row intact, by count and checksum
    after = table_rows(lake)
    assert len(after) == len(rows) and checksum(after) == checksum(rows)
    # nothing unreferenced is left, the planted orphans included
    fresh = lake.store.reload("metrics")
    stored = {f.path for f in list_files(fresh, lake.config.properties)}
    assert stored == stored & referenced(fresh)
    assert not any(exists(lake, p) for p in orphans)
    # the data files are sorted by run_id, key, step
    data = fresh.scan().to_arrow()
    for f in C.live_files(fresh):
        part = C.read_files(fresh, [f])
        keys = list(zip(part.column("run_id").to_pylist(), part.column("key").to_pylist(),
                        part.column("step").to_pylist()))
        assert keys == sorted(keys)
    assert data.num_rows == len(rows)
    # DuckDB (the query engine) sees the same rows
    assert lake.sql("SELECT count(*) AS n FROM lakeml.metrics")["n"][0] == len(rows)


def test_young_orphans_and_referenced_files_survive(lake):
    small_commits(lake, 12, rows=5)
    orphans = plant_orphans(lake)
    report = lake.maintain()  # real clock: the planted files are seconds old
    t = report.table("metrics")
    assert t.orphans_kept_young >= len(orphans)
    assert all(exists(lake, p) for p in orphans)
    # replaced small files are still referenced by retained snapshots (time travel): kept too
    tbl = lake.store.reload("metrics")
    first = min(tbl.metadata.snapshots, key=lambda s: s.timestamp_ms)
    assert tbl.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows == 5
    assert len(table_rows(lake)) == 60


@pytest.mark.s3
def test_s3_directory_markers_are_left_alone(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=30, **s3_lake_kwargs(server, bucket, tmp_path))
    try:
        rows = small_commits(lake, 30, rows=10)
        tbl = lake.store.table("metrics")
        prefix = tbl.location().split(f"s3://{bucket}/", 1)[1]
        client = server.client()
        markers = [f"{prefix}/data/", f"{prefix}/data/run_id_bucket=3/", f"{prefix}/metadata/"]
        for key in markers:
            client.put_object(Bucket=bucket, Key=key, Body=b"")
        orphans = plant_orphans(lake)
        report = lake.maintain(now=LATER)
        assert report.table("metrics").max_files_per_partition_after == 1
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=10_000)["Contents"]}
        assert set(markers) <= keys
        assert not any(exists(lake, p) for p in orphans)
        assert checksum(table_rows(lake)) == checksum(rows)
    finally:
        lake.close()


def test_compaction_keeps_an_append_that_lands_in_between(file_lake):
    lake = file_lake
    rows = small_commits(lake, 10, rows=10)
    tbl = lake.store.table("metrics")
    files = C.live_files(tbl)
    groups = C.plan_groups(files, C.CompactionPolicy())
    written = [f for g in groups for f in C.write_sorted(tbl, C.read_files(tbl, g), C.sort_columns(tbl))]
    # another writer appends after the compaction read its files, before it commits
    other = lake.store.catalog.load_table(tbl.name())
    late = [(RUNS[0], "late", 1.5, 10_000, 1)]
    append(other, rows_to_arrow(lake.store.contracts["metrics"], late), {"lakeml.batch-id": "late"})
    C.commit_rewrite(tbl, [f for g in groups for f in g], written, {"lakeml.maintenance": "compact"})
    assert checksum(table_rows(lake)) == checksum(rows + late)
    snap = lake.store.reload("metrics").current_snapshot()
    assert snap.summary.operation.value == "replace"


def test_competing_compactions_change_nothing_twice(file_lake):
    lake = file_lake
    rows = small_commits(lake, 10, rows=10)
    stale = lake.store.catalog.load_table(f"{lake.config.namespace}.metrics")
    first = C.compact(lake.store.table("metrics"), C.CompactionPolicy())
    assert first.snapshot_id is not None
    second = C.compact(stale, C.CompactionPolicy(), refresh=lambda: lake.store.reload("metrics"))
    assert second.conflicts == 1 and second.snapshot_id is None  # re-planned: nothing left to do
    assert checksum(table_rows(lake)) == checksum(rows)


def test_a_compaction_that_cannot_win_raises_and_changes_nothing(file_lake):
    """It used to give up after five tries and return a result as if it had merely found nothing."""
    from pyiceberg.exceptions import ValidationException

    from lakeml.errors import CommitError
    from lakeml.storage.retry import retry_stats

    lake = file_lake
    rows = small_commits(lake, 10, rows=10)
    stale = lake.store.catalog.load_table(f"{lake.config.namespace}.metrics")
    winner = C.compact(lake.store.table("metrics"), C.CompactionPolicy())
    with pytest.raises(CommitError, match=r"compaction of .*metrics.*the table is unchanged") as ei:
        C.compact(stale, C.CompactionPolicy(), deadline=0)
    assert isinstance(ei.value.__cause__, ValidationException)
    assert lake.store.reload("metrics").current_snapshot().snapshot_id == winner.snapshot_id
    assert checksum(table_rows(lake)) == checksum(rows)
    assert retry_stats()[f"compaction of {lake.config.namespace}.metrics"]["gave_up"] >= 1


def test_rewrite_carries_table_state_markers(file_lake):
    lake = file_lake
    tbl = lake.store.table("metrics")
    contract = lake.store.contracts["metrics"]
    for i in range(3):
        append(tbl, rows_to_arrow(contract, [(RUNS[0], "k", 1.0, i, 1)]),
               {"lakeml.batch-id": f"b{i}", "lakeml.registry.seq": str(i)})
    C.compact(tbl, C.CompactionPolicy())
    summary = lake.store.reload("metrics").current_snapshot().summary
    assert summary["lakeml.registry.seq"] == "2"  # readers walking back still find it
    assert "lakeml.batch-id" not in summary.additional_properties  # but no batch is claimed twice


def test_dry_run_changes_nothing(file_lake):
    lake = file_lake
    small_commits(lake, 15, rows=5)
    plant_orphans(lake)
    tbl = lake.store.reload("metrics")
    meta, n = tbl.metadata_location, len(C.live_files(tbl))
    planned = sum(len(g) for g in C.plan_groups(C.live_files(tbl), C.CompactionPolicy()))
    report = lake.maintain(dry_run=True, now=LATER)
    t = report.table("metrics")
    assert report.dry_run and t.files_rewritten == planned > 0 and t.orphans_deleted >= 3
    assert lake.store.reload("metrics").metadata_location == meta
    assert len(C.live_files(lake.store.table("metrics"))) == n


def test_maintain_validates_input(file_lake):
    with pytest.raises(InvalidInputError, match="unknown lakeml table"):
        file_lake.maintain("no_such_table")
    with pytest.raises(InvalidInputError, match="duration"):
        file_lake.maintain(retain="forever")


def test_automatic_maintenance_keeps_files_and_snapshots_bounded(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.05, commit_deadline=30,
                          **{"lakeml.maintenance.max-files-per-partition": "4",
                             "lakeml.maintenance.max-expirable-snapshots": "5",
                             "lakeml.history.keep-all-ms": "0"})
    try:
        run = lake.create_run("auto")
        auto = lake.committer.maintainer
        step = 0
        for _ in range(40):  # 40 commits from the committer's own thread
            for _ in range(10):
                lake.log_metric(run.run_id, "loss", float(step), step=step)
                step += 1
            lake.committer._wake.set()
            _wait_for(lambda: lake.committer.pending_rows() == 0)
        _wait_for(lambda: auto.compactions >= 3 and auto.expiries >= 3)
        lake.flush()
        tbl = lake.store.reload("metrics")
        small = C.files_per_partition(C.live_files(tbl))
        assert max(small.values()) <= 8  # the threshold, plus what arrived since the last pass
        assert len(tbl.metadata.snapshots) <= 10 + 5 + 8
        assert len(lake.get_metric_history(run.run_id, "loss")) == step
    finally:
        lake.close()


def test_automatic_maintenance_can_be_switched_off(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.maintenance.auto": "false"})
    try:
        assert lake.committer.maintainer is None
    finally:
        lake.close()


def _wait_for(cond, timeout: float = 60.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_maintenance_while_four_writer_processes_append(file_lake, py):
    lake = file_lake
    spec = lake_spec(lake)
    n = 10_000
    procs = [subprocess.Popen([py, "-m", "tests.workers.writer", json.dumps(spec), str(i), str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    passes = 0
    try:
        # expire everything time travel lets go; orphans keep the default one-day safety age, which
        # is what protects the files of the writers' in-flight commits
        while any(p.poll() is None for p in procs) or passes < 2:
            lake.maintain(retain="1s")
            passes += 1
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "done" in out
    lake.maintain(retain="1s")
    got = [r for r in table_rows(lake) if r[1] == "loss"]
    by_writer = {}
    for run_id, _key, value, step, _ts in got:
        by_writer.setdefault(int(value // 10_000_000), []).append((step, value))
    assert sorted(by_writer) == [0, 1, 2, 3]
    for i, points in by_writer.items():  # nothing lost, nothing duplicated
        assert sorted(points) == [(s, i * 10_000_000.0 + s) for s in range(n)]
    assert passes >= 2


def test_lakeml_maintain_command(tmp_path):
    from typer.testing import CliRunner

    from lakeml.cli.main import app

    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh, **{"lakeml.maintenance.auto": "false"})
    try:
        rows = small_commits(lake, 12, rows=5)
    finally:
        lake.close()
    runner = CliRunner()
    env = {"LAKEML_WAREHOUSE": str(wh)}
    res = runner.invoke(app, ["maintain", "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    assert "dry run" in res.stdout and "metrics" in res.stdout and "bytes freed" in res.stdout
    res = runner.invoke(app, ["maintain", "--table", "metrics", "--retain", "7d", "-o", "json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    (t,) = out["tables"]
    assert t["table"] == "metrics" and t["files_before"] == 12 and t["max_files_per_partition_after"] == 1
    assert out["files_after"] < out["files_before"] and t["seconds"] > 0
    res = runner.invoke(app, ["maintain", "--retain", "soon"], env=env)
    assert res.exit_code == 1 and "not a duration" in res.output
    lake = lakeml.connect(warehouse=wh)
    try:
        assert checksum(table_rows(lake)) == checksum(rows)
    finally:
        lake.close()


def test_maintenance_keeps_the_registry_working(file_lake):
    lake = file_lake
    for i in range(6):
        lake.create_model(f"model-{i}", description=f"v{i}")
    lake.update_model("model-0", description="changed")
    before = {m.name: m.description for m in lake.list_models()}
    events = len(lake.registry_events())
    report = lake.maintain(now=LATER)
    assert report.table("registry_events").files_after < report.table("registry_events").files_before
    assert {m.name: m.description for m in lake.list_models()} == before
    lake.create_model("after-maintenance")  # compare-and-swap commits still line up
    assert len(lake.registry_events()) == events + 1
    assert lake.sql("SELECT count(*) AS n FROM lakeml.registered_models")["n"][0] >= 7
