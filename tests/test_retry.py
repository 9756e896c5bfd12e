"""One commit-retry policy, ``retry_commit``, against a real SQL catalog where a second writer really
wins the compare-and-swap. Sleeps are recorded instead of slept, so no test waits on a backoff."""

from __future__ import annotations

import dataclasses
import time

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException

from lakeml.errors import CommitError, InvalidInputError
from lakeml.storage.contract import load_contracts
from lakeml.storage.maintenance import RetentionPolicy, expire_snapshots
from lakeml.storage.retry import describe_retry_stats, reset_retry_stats, retry_commit, retry_stats
from lakeml.storage.tables import TableStore, evolve

SCHEMA = pa.schema([pa.field("n", pa.int64())])
POLICY = RetentionPolicy(max_age_ms=0, min_snapshots=1, keep_all_ms=0, hourly_ms=0)


@pytest.fixture(autouse=True)
def _counters():
    reset_retry_stats()
    yield
    reset_retry_stats()


@pytest.fixture
def catalogs(tmp_path):
    """Two independent catalog clients (two writers) on one SQLite catalog, and a table in it that
    pyiceberg itself never rebases (``commit.retry.num-retries=0``, as the registry tables)."""
    props = {"uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": (tmp_path / "wh").as_uri()}
    (tmp_path / "wh").mkdir()
    mine, theirs = SqlCatalog("lakeml", **props), SqlCatalog("lakeml", **props)
    mine.create_namespace("t")
    mine.create_table("t.scratch", SCHEMA, properties={"commit.retry.num-retries": "0"})
    return mine, theirs


def rows(*ns: int) -> pa.Table:
    return pa.table({"n": list(ns)}, schema=SCHEMA)


def values(catalog) -> list[int]:
    return sorted(catalog.load_table("t.scratch").scan().to_arrow()["n"].to_pylist())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_lost_race_is_retried_on_a_reloaded_table(catalogs):
    mine, theirs = catalogs
    stale = mine.load_table("t.scratch")
    theirs.load_table("t.scratch").append(rows(1))  # the other writer commits first
    seen: list[tuple[int, type]] = []
    sleeps = Sleeps()

    def attempt(n: int) -> str:
        tbl = stale if n == 0 else mine.load_table("t.scratch")
        tbl.append(rows(2))
        return f"landed on attempt {n}"

    out = retry_commit(attempt, what="append to t.scratch", sleep=sleeps,
                       on_retry=lambda n, e: seen.append((n, type(e))))
    assert out == "landed on attempt 1"
    assert seen == [(0, CommitFailedException)], "the first attempt really lost the compare-and-swap"
    assert len(sleeps) == 1 and 0.025 <= sleeps[0] <= 0.075, "base delay 50 ms with jitter"
    assert values(mine) == [1, 2]
    assert retry_stats() == {"append to t.scratch": {"retries": 1, "gave_up": 0, "slow": 0}}
    assert describe_retry_stats() == "append to t.scratch: 1 retries"


def test_gives_up_with_a_commit_error_when_the_other_writer_keeps_winning(catalogs):
    mine, theirs = catalogs
    sleeps = Sleeps()
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        tbl = mine.load_table("t.scratch")
        theirs.load_table("t.scratch").append(rows(100 + n))  # someone else always gets in between
        tbl.append(rows(-1))

    with pytest.raises(CommitError) as ei:
        retry_commit(attempt, what="append to t.scratch", deadline=0.5, sleep=sleeps, max_delay=0.2)
    err = ei.value
    assert isinstance(err.__cause__, CommitFailedException)
    assert "append to t.scratch" in str(err) and "lakeml doctor" in str(err) and f"{len(calls)} attempts" in str(err)
    assert -1 not in values(mine), "never returned as if it had committed"
    assert len(calls) == len(sleeps) + 1 >= 2
    for i, s in enumerate(sleeps):  # exponential from 50 ms, capped at max_delay, jittered x0.5..x1.5
        cap = min(0.05 * 2 ** i, 0.2)
        assert 0.5 * cap <= s <= 1.5 * cap
    stats = retry_stats()["append to t.scratch"]
    assert stats["gave_up"] == 1 and stats["retries"] == len(sleeps)


def test_an_error_it_is_not_told_to_retry_propagates_at_once(catalogs):
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        raise InvalidInputError("bad row")

    with pytest.raises(InvalidInputError, match="bad row"):
        retry_commit(attempt, what="x", retry_on=(CommitFailedException,), sleep=Sleeps())
    assert calls == [0] and retry_stats() == {}


def test_a_zero_deadline_still_makes_one_attempt_and_says_how_to_fix(catalogs):
    with pytest.raises(CommitError, match="registry change.*Nothing was changed"):
        retry_commit(lambda n: (_ for _ in ()).throw(CommitFailedException("lost")), what="registry change",
                     deadline=0, hint="Nothing was changed.")
    assert retry_stats()["registry change"]["gave_up"] == 1


def test_a_slow_commit_is_counted_and_warned_about(caplog):
    def attempt(n: int) -> int:
        time.sleep(0.02)
        return 7

    with caplog.at_level("WARNING", logger="lakeml.retry"):
        assert retry_commit(attempt, what="slow one", slow_after=0.01) == 7
        assert retry_commit(lambda n: 8, what="fast one", slow_after=60) == 8
    assert retry_stats()["slow one"]["slow"] == 1 and "fast one" not in retry_stats()
    assert [r.getMessage().split(" was slow")[0] for r in caplog.records] == ["slow one"]


# -- the commits converted to it --------------------------------------------------------------------
def test_snapshot_expiry_raises_when_it_keeps_losing(catalogs):
    """Another process expired the same snapshots first. It used to return ``(0, tbl)`` after five
    tries, as if there had been nothing to expire."""
    mine, theirs = catalogs
    for i in range(4):
        mine.load_table("t.scratch").append(rows(i))
    stale = mine.load_table("t.scratch")
    now = int(time.time() * 1000) + 10_000
    assert expire_snapshots(theirs.load_table("t.scratch"), POLICY, now)[0] == 3  # the other process won
    with pytest.raises(CommitError, match="snapshot expiry of t.scratch") as ei:
        expire_snapshots(stale, POLICY, now, deadline=0)
    assert isinstance(ei.value.__cause__, ValueError)  # pyiceberg: the snapshot to remove is gone
    assert retry_stats()["snapshot expiry of t.scratch"]["gave_up"] == 1
    # given time, it reloads and finds nothing left to expire
    n, after = expire_snapshots(stale, POLICY, now)
    assert n == 0 and len(after.metadata.snapshots) == 1 and values(theirs) == [0, 1, 2, 3]
    assert retry_stats()["snapshot expiry of t.scratch"]["retries"] == 1


def test_table_evolution_raises_rather_than_returning_an_unevolved_table(file_lake):
    """A concurrent schema change makes the evolution's compare-and-swap fail; it used to give up
    silently after five tries and return the table without the new columns."""
    lake = file_lake
    from pyiceberg.types import StringType

    current = load_contracts()["experiments"]
    old = dataclasses.replace(current, fields=current.fields[:-1])
    TableStore(lake.config, contracts={**load_contracts(), "experiments": old}).table("experiments")
    ident = lake.store.identifier("experiments")
    stale = lake.store.catalog.load_table(ident)
    with lake.store.catalog.load_table(ident).update_schema() as us:  # another writer changes the schema
        us.add_column("added_elsewhere", StringType())
    with pytest.raises(CommitError, match="evolving table .*experiments") as ei:
        evolve(stale, current, deadline=0)
    assert isinstance(ei.value.__cause__, CommitFailedException)
    assert current.fields[-1].name not in stale.schema().column_names
    evolved = evolve(stale, current)  # with time to retry it reloads and wins
    names = evolved.schema().column_names
    assert current.fields[-1].name in names and "added_elsewhere" in names
    assert retry_stats()[f"evolving table {ident} to its contract"]["retries"] >= 1


def test_registry_ledger_recomputes_after_losing_the_race_and_raises_when_it_cannot_win(file_lake):
    """The other writer commits a registry change between this writer's read and its append."""
    from datetime import datetime, timezone

    from lakeml.registry import changes
    from lakeml.registry.ledger import Ledger

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    mine, theirs = Ledger(file_lake.store), Ledger(TableStore(file_lake.config))
    made = []

    def create(name: str):
        return lambda st: changes.create_model(st, name, description=None, tags=None, now=now, actor="t")

    def plan(st):  # the first time, the other writer gets in between
        if not made:
            made.append(theirs.commit(create("theirs")))
        return create("mine")(st)

    assert mine.commit(plan).name == "mine"
    assert mine.stats["conflicts"] == 1 and mine.stats["commits"] == 1
    assert [(e.event_seq, e.model_name) for e in mine.events()] == [(1, "theirs"), (2, "mine")]
    ident = file_lake.store.identifier("registry_events")
    assert retry_stats()[f"registry change to {ident}"]["retries"] == 1

    always = Ledger(TableStore(file_lake.config), deadline=0)

    def losing(st):
        theirs.commit(create(f"theirs-{len(st.models)}"))
        return create("never")(st)

    with pytest.raises(CommitError, match="Nothing was changed unless it shows in 'lakeml models show'") as ei:
        always.commit(losing)
    assert isinstance(ei.value.__cause__, CommitFailedException)
    assert "never" not in mine.state().models
