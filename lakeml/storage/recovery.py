"""Recovery of dead writers' spools: commit what they acknowledged, exactly once; mark their runs KILLED.

For each spool folder whose owner process is dead (its ``flock`` is free), every
spooled batch is committed under its own batch id (merged per table, as the committer
does): a batch the dead process had already committed (it died between the commit and
forgetting the batch) is found by its id in the snapshot summaries, or by its rows once
the snapshots are expired, and skipped.
Then each run that process was logging and left RUNNING gets a KILLED event whose
end time is the process's last-seen time (its last spool write or committer tick).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.errors import CommitError
from lakeml.storage.committer import Batch, Committer, batch_landed, rows_to_arrow
from lakeml.storage.drain import hold_busy
from lakeml.storage.spool import QUARANTINE, DeadOwner, Segment, claim_dead_owners

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.recovery")

KILLED = "KILLED"
RUNNING = "RUNNING"


@dataclass
class OwnerRecovery:
    owner: str
    host: str
    pid: int
    last_seen_ms: int
    batches: int = 0
    rows: int = 0
    already_committed: int = 0
    runs_killed: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class RecoveryReport:
    owners: list[OwnerRecovery] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.owners)

    @property
    def batches(self) -> int:
        return sum(o.batches for o in self.owners)

    @property
    def runs_killed(self) -> list[str]:
        return [r for o in self.owners for r in o.runs_killed]

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"owners": [asdict(o) for o in self.owners], "rows": self.rows, "batches": self.batches,
                "runs_killed": self.runs_killed, "seconds": self.seconds}


def recover(store: "TableStore", root: Path | None, *, deadline: float = 120.0, clock_us: Any = None,
            maintainer: Any = None, owners: "list[DeadOwner] | None" = None) -> RecoveryReport:
    """Recover every dead owner's spool under ``root``; returns what was done.

    All their batches go in together: those that already landed (found by batch id, or by their rows
    once history was expired) are skipped, the rest merged into one commit per table, like the live
    committer does. Then each owner's unfinished runs are marked KILLED and its spool removed."""
    start = time.perf_counter()
    report = RecoveryReport()
    # readers (drain.wait_for_drains) wait while we hold this, from before we claim a spool until it is committed
    busy = hold_busy(root) if root is not None and root.is_dir() else None
    try:
        return _recover(store, root, deadline=deadline, clock_us=clock_us, maintainer=maintainer, owners=owners,
                        start=start, report=report)
    finally:
        if busy is not None:
            os.close(busy)


def _recover(store: "TableStore", root: Path | None, *, deadline: float, clock_us: Any, maintainer: Any,
             owners: "list[DeadOwner] | None", start: float, report: RecoveryReport) -> RecoveryReport:
    claimed: list[tuple[DeadOwner, OwnerRecovery, list[Segment]]] = []
    for owner in itertools.chain(owners or (), claim_dead_owners(root)):  # ``owners``: already locked by us
        rec = OwnerRecovery(owner.dir.name, owner.host, owner.pid, owner.last_seen_ms)
        report.owners.append(rec)
        try:
            segments = owner.segments()
        except OSError as e:
            segments, rec.error = None, f"{type(e).__name__}: {e}"
        unknown = sorted({s.table for s in segments or () if s.table not in store.contracts})
        if segments is None or unknown:
            if unknown:
                rec.error = f"holds batches for unknown table(s) {', '.join(unknown)}; kept"
            log.warning("spool %s not recovered: %s", owner.dir, rec.error)
            owner.release(remove=False)
            continue
        claimed.append((owner, rec, segments))
    owners = claimed
    if not owners:
        report.seconds = time.perf_counter() - start
        return report
    committer = Committer(store, deadline=deadline, quarantine_dir=Path(owners[0][0].dir).parent / QUARANTINE, maintainer=maintainer)
    done = False
    try:
        by_table: dict[str, list[tuple[Batch, OwnerRecovery]]] = {}
        for owner, rec, segments in owners:
            for seg in segments:
                batch = _batch_of(seg, owner, rec)
                if batch is not None:
                    by_table.setdefault(seg.table, []).append((batch, rec))
        for table, batches in by_table.items():
            tbl = store.table(table, refresh=True)
            todo = []
            for batch, rec in batches:
                committer.materialize(batch)  # the rows fallback of batch_landed needs Arrow
                if batch_landed(tbl, batch):
                    rec.already_committed += 1
                else:
                    rec.batches += 1
                    rec.rows += batch.num_rows
                    todo.append(batch)
            if todo:
                committer.commit_batches(todo, deadline=deadline)
        for owner, rec, _ in owners:
            rec.runs_killed = kill_runs(store, owner, committer, clock_us=clock_us)
        done = True
    except Exception as e:  # keep the spools for the next attempt; report, don't raise
        for _, rec, _ in owners:
            rec.error = rec.error or f"{type(e).__name__}: {e}"
        log.warning("could not recover the spools under %s: %s: %s", root, type(e).__name__, e)
    finally:
        for owner, _, segments in owners:
            if done:
                for path in sorted({s.path for s in segments}):
                    Path(path).unlink(missing_ok=True)
            owner.release(remove=done)
    report.seconds = time.perf_counter() - start
    return report


def _batch_of(seg: Segment, owner: DeadOwner, rec: OwnerRecovery) -> Batch | None:
    """The batch a spool segment holds (None if unreadable: set aside, never blocking the others)."""
    try:
        if seg.kind == "rows" and seg.offset is not None:
            return Batch(seg.table, rows=seg.rows(), batch_id=seg.batch_id, created_ms=seg.created_ms,
                         spool_path=seg.path)
        return Batch(seg.table, seg.read().replace_schema_metadata(None), batch_id=seg.batch_id,
                     created_ms=seg.created_ms, spool_path=seg.path)
    except Exception as e:  # disk damage
        bad = owner.dir.parent / "corrupt" / f"{owner.dir.name}-{Path(seg.path).name}-{seg.batch_id}"
        bad.parent.mkdir(exist_ok=True)
        if seg.offset is None:
            Path(seg.path).rename(bad)
        else:
            bad.write_bytes(seg.payload())
        rec.error = f"segment {seg.path} ({seg.batch_id}) is unreadable ({e}); moved to {bad}"
        log.error("%s", rec.error)
        return None


def kill_runs(store: "TableStore", owner: DeadOwner, committer: Committer, *, clock_us: Any = None) -> list[str]:
    """Append a KILLED event for each run the dead owner left RUNNING; returns their ids."""
    from pyiceberg.expressions import And, EqualTo, In

    if "runs" not in store.contracts:
        return []
    try:
        tbl = store.catalog.load_table(store.identifier("runs"))
    except Exception:
        return []  # no runs table: nothing was ever started
    last_seen_us = owner.last_seen_ms * 1000
    mine = tbl.scan(row_filter=And(EqualTo("host", owner.host), EqualTo("pid", owner.pid)),
                    selected_fields=("run_id",)).to_arrow()
    ids = sorted(set(mine.column("run_id").to_pylist()))
    if not ids:
        return []
    events = tbl.scan(row_filter=In("run_id", ids)).to_arrow().to_pylist()
    latest: dict[str, dict] = {}
    for ev in events:
        cur = latest.get(ev["run_id"])
        if cur is None or (ev["event_time"], ev["event_seq"]) > (cur["event_time"], cur["event_seq"]):
            latest[ev["run_id"]] = ev
    contract = store.contracts["runs"]
    now_us = clock_us() if clock_us is not None else time.time_ns() // 1000
    rows, killed = [], []
    for run_id, ev in sorted(latest.items()):
        if ev["status"] != RUNNING or ev.get("host") != owner.host or ev.get("pid") != owner.pid:
            continue
        ev_us = _us(ev["event_time"])
        if ev_us < owner.started_ms * 1000 - 60_000_000 or ev_us > last_seen_us + 60_000_000:
            continue  # not this process's run (the pid was reused)
        row = dict(ev)
        row.update(event_time=max(now_us, ev_us + 1), event_seq=int(ev["event_seq"]) + 1, status=KILLED,
                   end_time=max(last_seen_us, ev_us),
                   error=(f"killed: process {owner.pid} on {owner.host} stopped without ending the run; "
                          "found dead by lakeml recovery, end_time is when it was last seen"))
        rows.append(tuple(_us(row[c]) if c in ("event_time", "start_time", "end_time") else row.get(c)
                          for c in contract.column_names))
        killed.append(run_id)
    if rows:
        # a deterministic batch id: a recovery that dies after this commit does not kill twice
        bid = hashlib.sha256(f"{owner.dir.name}:killed".encode()).hexdigest()[:32]
        batch = Batch("runs", rows_to_arrow(contract, rows), batch_id=bid, attempts=1)
        try:
            committer._commit(batch, committer.deadline)
        except CommitError:
            raise
    return killed


def _us(v: Any) -> Any:
    """A timestamp read back from Iceberg (aware datetime) as exact int microseconds."""
    from datetime import datetime, timedelta, timezone

    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return (v - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return v
