"""Recovery of dead writers' spools: commit what they acknowledged, exactly once; mark their runs KILLED.

For each spool folder whose owner process is dead (its ``flock`` is free), every
segment is committed under its own batch id: a batch the dead process had already
committed (it died between the commit and deleting the segment) is found by its id
in the snapshot summaries, or by its rows once the snapshots are expired, and skipped.
Then each run that process was logging and left RUNNING gets a KILLED event whose
end time is the process's last-seen time (its last spool write or committer tick).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.errors import CommitError
from lakeml.storage.committer import Batch, Committer, rows_to_arrow
from lakeml.storage.spool import DeadOwner, claim_dead_owners

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


def recover(store: "TableStore", root: Path | None, *, deadline: float = 120.0,
            clock_us: Any = None) -> RecoveryReport:
    """Recover every dead owner's spool under ``root``; returns what was done."""
    start = time.perf_counter()
    report = RecoveryReport()
    for owner in claim_dead_owners(root):
        rec = OwnerRecovery(owner.dir.name, owner.host, owner.pid, owner.last_seen_ms)
        report.owners.append(rec)
        done = False
        try:
            done = recover_owner(store, owner, rec, deadline=deadline, clock_us=clock_us)
        except Exception as e:  # keep the spool for the next attempt; report, don't raise
            rec.error = f"{type(e).__name__}: {e}"
            log.warning("could not recover the spool %s: %s", owner.dir, rec.error)
        finally:
            owner.release(remove=done)
    report.seconds = time.perf_counter() - start
    return report


def recover_owner(store: "TableStore", owner: DeadOwner, rec: OwnerRecovery, *, deadline: float,
                  clock_us: Any = None) -> bool:
    """Commit one dead owner's segments and kill its runs; True once its spool can go."""
    committer = Committer(store, deadline=deadline, sort=False)
    committed_last = 0
    for seg in owner.segments():
        if seg.table not in store.contracts:
            log.warning("spool segment %s is for unknown table %r; kept", seg.path, seg.table)
            return False
        try:
            data = seg.read().replace_schema_metadata(None)
        except Exception as e:  # unreadable (disk damage): set aside, never block the others
            bad = owner.dir.parent / "corrupt" / f"{owner.dir.name}-{Path(seg.path).name}"
            bad.parent.mkdir(exist_ok=True)
            Path(seg.path).rename(bad)
            rec.error = f"segment {seg.path} is unreadable ({e}); moved to {bad}"
            log.error("%s", rec.error)
            continue
        batch = Batch(seg.table, data, batch_id=seg.batch_id, attempts=1, created_ms=seg.created_ms,
                      spool_path=seg.path)
        before = committer.stats.duplicates_avoided
        committer._commit(batch, deadline)  # attempts=1: looks the batch id up before appending
        if committer.stats.duplicates_avoided > before:
            rec.already_committed += 1
        else:
            rec.batches += 1
            rec.rows += batch.num_rows
        committed_last = max(committed_last, seg.created_ms)
        Path(seg.path).unlink(missing_ok=True)
    rec.runs_killed = kill_runs(store, owner, committer, clock_us=clock_us)
    return True


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
