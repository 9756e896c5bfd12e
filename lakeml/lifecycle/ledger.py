"""The lifecycle ledger: ``project_events`` written by compare-and-swap, in the style of ``registry_events``.

A transition is computed from the state at the ledger's current snapshot S and appended as one
Iceberg commit that requires ``main`` to still be at S (the table sets ``commit.retry.num-retries``
to 0, so pyiceberg never rebases a stale append). When another writer won, the transition is
computed again from the new state: a task that the other writer completed meanwhile is then
no longer ready, and the plan raises :class:`~lakeml.errors.ConflictError`.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from lakeml.clock import Clock, datetime_to_us, now_us
from lakeml.errors import StorageError
from lakeml.lifecycle.records import ProjectsState
from lakeml.storage.committer import BATCH_ID, WRITER, is_committed, rows_to_arrow
from lakeml.storage.eventlog import OutcomeUnknown, new_event_rows
from lakeml.storage.tables import append

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table

    from lakeml.storage.tables import TableStore

EVENTS = "project_events"
SEQ = "lakeml.lifecycle.seq"


@dataclass
class Plan:
    """What a request turns into at one state: event rows (column dicts), the result, an error to raise."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    error: Exception | None = None


class ProjectLedger:
    """Reads and writes ``project_events`` of one lake; thread-safe."""

    def __init__(self, store: "TableStore", *, clock: Clock = now_us, deadline: float = 60.0):
        self.store = store
        self.clock = clock
        self.deadline = deadline
        self._lock = threading.RLock()
        self._snapshot: int | None = None
        self._files: frozenset[str] = frozenset()
        self._state = ProjectsState()
        self._host = socket.gethostname()
        self.stats = {"commits": 0, "conflicts": 0}

    def _load(self) -> "Table":
        self.store.table(EVENTS)
        return self.store.reload(EVENTS)

    def state(self) -> ProjectsState:
        """The current state (a copy)."""
        with self._lock:
            return self._fold(self._load()).copy()

    def events(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Every event row (of one project) without the workflow state, oldest first."""
        tbl = self._load()
        if tbl.current_snapshot() is None:
            return []
        from pyiceberg.expressions import AlwaysTrue, EqualTo

        cols = [c for c in self.store.contracts[EVENTS].column_names if c != "workflow_state"]
        flt = EqualTo("project_id", project_id) if project_id is not None else AlwaysTrue()
        try:
            data = tbl.scan(row_filter=flt, selected_fields=tuple(cols)).to_arrow()
        except Exception as e:
            raise StorageError(f"cannot read {tbl.name()}: {type(e).__name__}: {e}") from e
        return data.sort_by("event_seq").to_pylist()

    def _fold(self, tbl: "Table") -> ProjectsState:
        snap = tbl.current_snapshot()
        if snap is None:
            self._snapshot, self._files, self._state = None, frozenset(), ProjectsState()
            return self._state
        if snap.snapshot_id == self._snapshot:
            return self._state
        files, incremental, rows = new_event_rows(tbl, self._files)
        base = self._state.copy() if incremental else ProjectsState()
        for row in rows:
            if row["event_seq"] > base.seq:
                t = row["event_time"]
                t_us = datetime_to_us(t.astimezone(timezone.utc)) if isinstance(t, datetime) else int(t)
                base.apply(row, t_us)
        self._snapshot, self._files, self._state = snap.snapshot_id, files, base
        return base

    def commit(self, plan_fn: Callable[[ProjectsState, int], Plan], *, actor: str | None) -> tuple[Plan, list[dict]]:
        """Compute a plan at the newest state (``plan_fn(state, now_us)``, read-only) and append its rows,
        compare-and-swap; on a lost race, compute it again. Returns the plan and the committed rows.
        Raises the plan's error (after committing its rows, e.g. a recorded refusal)."""
        from pyiceberg.exceptions import CommitFailedException

        from lakeml.storage.retry import retry_commit

        unknown: list[tuple[str, Plan, list[dict]]] = []

        def attempt(n: int) -> tuple[Plan, list[dict]]:
            tbl = self._load()
            for batch, plan, rows in unknown:
                if is_committed(tbl, batch):
                    return plan, rows
            st = self._fold(tbl)
            now = self.clock()
            plan = plan_fn(st.copy(), now)
            if not plan.rows:
                return plan, []
            rows = []
            for i, r in enumerate(plan.rows):
                rows.append({**r, "event_seq": st.seq + 1 + i, "event_id": uuid.uuid4().hex, "event_time": now,
                             "actor": r.get("actor", actor), "host": self._host, "pid": os.getpid()})
            contract = self.store.contracts[EVENTS]
            tuples = [tuple(r.get(c) for c in contract.column_names) for r in rows]
            batch = uuid.uuid4().hex
            props = {BATCH_ID: batch, WRITER: f"{self._host}:{os.getpid()}", SEQ: str(rows[-1]["event_seq"])}
            try:
                append(tbl, rows_to_arrow(contract, tuples, sort=False), props)
            except CommitFailedException:
                self.stats["conflicts"] += 1
                raise
            except Exception as e:
                unknown.append((batch, plan, rows))
                raise OutcomeUnknown(f"{type(e).__name__}: {e}") from e
            self.stats["commits"] += 1
            return plan, rows

        with self._lock:
            plan, rows = retry_commit(attempt, what=f"lifecycle change to {self.store.identifier(EVENTS)}",
                                      deadline=self.deadline, max_delay=1.0,
                                      retry_on=(CommitFailedException, OutcomeUnknown), key=EVENTS,
                                      hint="Nothing was changed unless 'lakeml projects show' shows it.")
        if plan.error is not None:
            raise plan.error
        return plan, rows
