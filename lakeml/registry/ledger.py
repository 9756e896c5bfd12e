"""The registry ledger: ``registry_events`` written by compare-and-swap, and its projections.

Every registry change is computed from the state at the ledger's current snapshot S and appended
as one Iceberg commit that requires the table's ``main`` branch to still be at S (pyiceberg's
append carries an ``AssertRefSnapshotId`` requirement; the registry tables set
``commit.retry.num-retries`` to 0, so pyiceberg never rebases a stale append). When another
writer won, the commit fails, and the change is recomputed from the new state and retried with
backoff. So ``event_seq`` is gap-free and totally ordered, version numbers are gap-free per model,
and ``before`` is exactly what the change replaced.

The tables ``registered_models``, ``model_versions``, ``model_aliases`` and ``deployments`` are
projections of the ledger for SQL users. Each projection commit records the last event it holds
(``lakeml.registry.seq`` in the snapshot summary) and is itself compare-and-swap, so a
projection is caught up exactly once, by whichever process gets there first, after every change.

Reads fold the ledger incrementally: only data files added since the last fold are read.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from lakeml.clock import Clock, datetime_to_us, now_us, us_to_datetime
from lakeml.registry.records import RegistryEvent, _Stored
from lakeml.registry.state import ENTITY_TYPES, RegistryState
from lakeml.storage.committer import BATCH_ID, WRITER, is_committed, rows_to_arrow
from lakeml.storage.eventlog import OutcomeUnknown, new_event_rows
from lakeml.storage.tables import append

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table

    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.registry")

EVENTS = "registry_events"
PROJECTIONS = {"model": "registered_models", "version": "model_versions", "alias": "model_aliases",
               "deployment": "deployments"}
SEQ = "lakeml.registry.seq"


@dataclass
class Change:
    """One event to append: what changed from ``before`` to ``after`` (or a refused request)."""

    event_type: str
    entity: str  # model, version, alias, deployment
    model_name: str
    after: _Stored | None
    before: _Stored | None = None
    outcome: str = "applied"
    version: int | None = None
    alias: str | None = None
    environment: str | None = None
    service: str | None = None
    message: str | None = None
    run_id: str | None = None

    @property
    def entity_key(self) -> str:
        rec = self.after or self.before
        if self.entity == "version":
            return f"{self.model_name}/{self.version}"
        if self.entity == "alias":
            return f"{self.model_name}@{self.alias}"
        if self.entity == "deployment":
            return getattr(rec, "deployment_id", "")
        return self.model_name


@dataclass
class Plan:
    """What a request turns into at one state: events to commit, the value to return, an error to raise."""

    changes: list[Change] = field(default_factory=list)
    result: Any = None
    error: Exception | None = None

    def finish(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class _Fold:
    snapshot_id: int | None
    files: frozenset[str]
    state: RegistryState
    events: list[RegistryEvent]


def _empty() -> _Fold:
    return _Fold(None, frozenset(), RegistryState(), [])


def fold_events(data: Any) -> RegistryState:
    """The registry state folded from ``data``: every row of ``registry_events`` as Arrow, read by
    another engine (a read-only process reads it with DuckDB, without pyiceberg). Same fold as
    :meth:`Ledger.state`: events by ``event_seq``, each sequence number once."""
    from datetime import timezone

    st = RegistryState()
    for row in data.sort_by("event_seq").to_pylist():
        if isinstance(row.get("event_time"), datetime):  # DuckDB: the session's zone; the ledger: UTC
            row["event_time"] = row["event_time"].astimezone(timezone.utc)
        ev = _event(row)
        if ev.event_seq > st.seq:
            st.apply(ev)
    return st


class Ledger:
    """Reads and writes the registry ledger of one lake; thread-safe."""

    def __init__(self, store: "TableStore", *, clock: Clock = now_us, deadline: float = 120.0):
        self.store = store
        self.clock = clock
        self.deadline = deadline
        self.stats = {"commits": 0, "conflicts": 0, "seconds": 0.0, "projection_commits": 0,
                      "projection_conflicts": 0, "projection_seconds": 0.0}
        self._lock = threading.RLock()
        self._fold_cache = _empty()
        self._ready = False
        self._marks: dict[str, int] = {}  # projection table -> last event it is known to hold
        self._host = socket.gethostname()

    # -- reads --------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if not self._ready:
            for name in (EVENTS, *PROJECTIONS.values()):
                self.store.table(name)
            self._ready = True

    def _load(self, name: str) -> "Table":
        self._ensure()
        return self.store.reload(name)

    def state(self) -> RegistryState:
        """The current state (a copy; safe to keep)."""
        with self._lock:
            return self._fold(self._load(EVENTS)).state.copy()

    def events(self, model_name: str | None = None) -> list[RegistryEvent]:
        """Every event (of one model), oldest first."""
        with self._lock:
            evs = self._fold(self._load(EVENTS)).events
        return [e for e in evs if model_name is None or e.model_name == model_name]

    def _fold(self, tbl: "Table") -> _Fold:
        snap = tbl.current_snapshot()
        cache = self._fold_cache
        if snap is None:
            self._fold_cache = _empty()
            return self._fold_cache
        if snap.snapshot_id == cache.snapshot_id:
            return cache
        files, incremental, rows = new_event_rows(tbl, cache.files)
        base = _Fold(None, cache.files, cache.state.copy(), list(cache.events)) if incremental else _empty()
        for row in rows:
            ev = _event(row)
            if ev.event_seq > base.state.seq:
                base.state.apply(ev)
                base.events.append(ev)
        self._fold_cache = _Fold(snap.snapshot_id, files, base.state, base.events)
        return self._fold_cache

    # -- writes -------------------------------------------------------------------------------
    def commit(self, plan_fn: Callable[[RegistryState], Plan], *, actor: str | None = None,
               deadline: float | None = None) -> Any:
        """Compute a plan at the newest state and append its events, compare-and-swap; retry on conflict.

        ``plan_fn`` must only read the state; it is called again after every lost race.
        Returns ``plan.result`` (or raises ``plan.error`` once its events are committed).
        """
        from pyiceberg.exceptions import CommitFailedException

        from lakeml.storage.retry import retry_commit

        start = time.monotonic()
        unknown: list[tuple[str, Plan]] = []  # attempts whose outcome is unknown, by batch id

        def attempt(n: int) -> tuple[Plan, "Table | None"]:  # (plan, the table it was committed to)
            tbl = self._load(EVENTS)
            landed = next((p for b, p in unknown if is_committed(tbl, b)), None)
            if landed is not None:
                return landed, self._load(EVENTS)
            plan = plan_fn(self._fold(tbl).state)
            if not plan.changes:
                return plan, None
            first = self._fold_cache.state.seq + 1
            rows = [self._row(c, first + i, actor) for i, c in enumerate(plan.changes)]
            batch = uuid.uuid4().hex
            props = {BATCH_ID: batch, WRITER: f"{self._host}:{os.getpid()}", SEQ: str(first + len(rows) - 1)}
            try:
                append(tbl, rows_to_arrow(self.store.contracts[EVENTS], rows, sort=False), props)
            except CommitFailedException:  # another writer moved the table: recompute
                self.stats["conflicts"] += 1
                raise
            except Exception as e:  # outcome unknown: look the batch up before trying again
                unknown.append((batch, plan))
                raise OutcomeUnknown(f"{type(e).__name__}: {e}") from e
            return plan, tbl

        with self._lock:
            plan, tbl = retry_commit(
                attempt, what=f"registry change to {self.store.identifier(EVENTS)}",
                deadline=deadline if deadline is not None else self.deadline, max_delay=2.0,
                retry_on=(CommitFailedException, OutcomeUnknown),
                hint="Nothing was changed unless it shows in 'lakeml models show'. Check storage with "
                     "'lakeml doctor'.")
            if tbl is None:
                return plan.finish()
            self.stats["commits"] += 1
            self.stats["seconds"] += time.monotonic() - start
            try:
                self._sync(self._fold(tbl))
            except Exception as e:  # the ledger has it; projections catch up on the next change
                log.warning("registry projections not caught up yet (%s: %s)", type(e).__name__, e)
        return plan.finish()

    def _row(self, c: Change, seq: int, actor: str | None) -> tuple:
        return (seq, uuid.uuid4().hex, self.clock(), c.event_type, c.outcome, c.model_name, c.version, c.alias,
                c.environment, c.service, c.entity, c.entity_key, actor,
                c.before.to_json() if c.before is not None else None,
                c.after.to_json() if c.after is not None else None, c.message, c.run_id, self._host, os.getpid())

    # -- projections --------------------------------------------------------------------------
    def sync(self) -> dict[str, int]:
        """Bring the projection tables up to the ledger; returns rows appended per table."""
        with self._lock:
            self._marks.clear()
            return self._sync(self._fold(self._load(EVENTS)))

    def _sync(self, fold: _Fold) -> dict[str, int]:
        start = time.monotonic()
        out = {}
        for entity, table in PROJECTIONS.items():
            pending = [e for e in fold.events if e.entity == entity and e.outcome == "applied"
                       and e.event_seq > self._marks.get(table, 0)]
            out[table] = self._sync_one(table, pending) if pending else 0
        self.stats["projection_seconds"] += time.monotonic() - start
        return out

    def _sync_one(self, table: str, events: list[RegistryEvent]) -> int:
        from pyiceberg.exceptions import CommitFailedException

        from lakeml.storage.retry import retry_commit

        contract = self.store.contracts[table]

        def attempt(n: int) -> int:  # a lost race: someone else caught it up, or appended first; look again
            tbl = self._load(table)
            done = applied_seq(tbl)
            self._marks[table] = max(self._marks.get(table, 0), done)
            todo = [e for e in events if e.event_seq > done]
            if not todo:
                return 0
            rows = [projection_row(contract.column_names, e) for e in todo]
            try:
                append(tbl, rows_to_arrow(contract, rows, sort=False),
                       {SEQ: str(todo[-1].event_seq), BATCH_ID: uuid.uuid4().hex})
            except CommitFailedException:
                self.stats["projection_conflicts"] += 1
                raise
            self.stats["projection_commits"] += 1
            self._marks[table] = todo[-1].event_seq
            return len(rows)

        return retry_commit(attempt, what=f"catching up {self.store.identifier(table)} with the registry ledger",
                            deadline=self.deadline, retry_on=(CommitFailedException,), base_delay=0.02,
                            max_delay=1.0, hint="The ledger has the change; the projection catches up on the "
                            "next registry change.")


def applied_seq(tbl: "Table") -> int:
    """The last ledger event a projection table holds (from snapshot summaries, else its rows)."""
    snap = tbl.current_snapshot()
    while snap is not None:
        if snap.summary is not None and SEQ in snap.summary.additional_properties:
            return int(snap.summary[SEQ])
        snap = tbl.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id is not None else None
    if tbl.current_snapshot() is None:
        return 0
    col = tbl.scan(selected_fields=("event_seq",)).to_arrow()["event_seq"]
    return int(max(col.to_pylist(), default=0))


def projection_row(columns: list[str], ev: RegistryEvent) -> tuple:
    """The projection-table row of an applied event, in contract column order."""
    rec = ENTITY_TYPES[ev.entity].from_stored(ev.after)
    out: list[Any] = []
    for col in columns:
        if col == "event_seq":
            val: Any = ev.event_seq
        elif col in ("signature_inputs", "signature_outputs"):
            part = (rec.signature or {}).get(col.split("_", 1)[1])
            val = json.dumps(part) if part is not None else None
        elif col == "gates":
            val = json.dumps(rec.gates, sort_keys=True) if rec.gates else None
        else:
            val = getattr(rec, col)
        if isinstance(val, datetime):
            val = datetime_to_us(val)
        elif isinstance(val, dict):
            val = list(val.items())
        out.append(val)
    return tuple(out)


def _event(row: dict[str, Any]) -> RegistryEvent:
    def parse(text: str | None) -> dict | None:
        return json.loads(text) if text else None

    t = row["event_time"]
    if isinstance(t, int):  # pragma: no cover - Arrow gives datetimes
        t = us_to_datetime(t)
    return RegistryEvent(
        event_seq=row["event_seq"], event_id=row["event_id"], event_time=t, event_type=row["event_type"],
        outcome=row["outcome"], model_name=row["model_name"], entity=row["entity"], entity_key=row["entity_key"],
        version=row["version"], alias=row["alias"], environment=row["environment"], service=row["service"],
        actor=row["actor"], before=parse(row["before"]), after=parse(row["after"]), message=row["message"],
        run_id=row["run_id"], host=row["host"], pid=row["pid"])
