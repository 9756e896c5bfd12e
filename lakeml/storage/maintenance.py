"""Table maintenance: compaction, manifest merging, snapshot expiry, orphan cleanup.

:func:`maintain_table` runs the four steps on one table, in that order, and returns a
:class:`TableReport`. :class:`AutoMaintainer` runs the same steps from the committer's
thread whenever a table crosses a threshold, so that a lake nobody maintains by hand
keeps flat commit and query latency.

Time travel promise (:class:`RetentionPolicy`, from the table properties):

* every snapshot younger than ``lakeml.history.keep-all-ms`` (default 1 minute);
* the newest ``history.expire.min-snapshots-to-keep`` snapshots (default 10);
* the last snapshot of every hour for the last ``lakeml.history.hourly-ms`` (default 1 day);
* the last snapshot of every day up to ``history.expire.max-snapshot-age-ms`` (default 7 days),
  and the one that was current when that window starts;
* branch and tag heads, always.

So ``AS OF`` any time in the last 7 days resolves to the state at the end of the previous
hour (last day) or day (older), or exactly (last minute). Everything else is expired:
pyiceberg copies the whole metadata on every commit, so commit latency grows with the
number of snapshots kept.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from lakeml.errors import InvalidInputError, StorageError
from lakeml.storage.compaction import (CompactionPolicy, CompactionResult, compact, files_per_partition,
                                       live_files, partition_key, rewrite_manifests)
from lakeml.storage.orphans import OrphanResult, remove_orphans

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table

    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.maintenance")

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DEFAULT_ORPHAN_AGE_MS = DAY_MS

# lakeml's maintenance keys (table properties, or catalog properties for the whole lake)
AUTO = "lakeml.maintenance.auto"
AUTO_FILES = "lakeml.maintenance.max-files-per-partition"
AUTO_SNAPSHOTS = "lakeml.maintenance.max-expirable-snapshots"
AUTO_METADATA_BYTES = "lakeml.maintenance.max-metadata-bytes"
AUTO_ORPHAN_INTERVAL = "lakeml.maintenance.orphan-interval-ms"
SMALL_FILE = "lakeml.compact.small-file-bytes"
KEEP_ALL = "lakeml.history.keep-all-ms"
HOURLY = "lakeml.history.hourly-ms"
MAX_AGE = "history.expire.max-snapshot-age-ms"
MIN_KEEP = "history.expire.min-snapshots-to-keep"

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_duration_ms(value: str | int | float | timedelta | None, what: str = "duration") -> int | None:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"250ms"``, a timedelta or seconds -> milliseconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise InvalidInputError(f"{what} {value!r} is negative; use 0 or more seconds")
        return int(value * 1000)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)?\s*", str(value))
    if not m:
        raise InvalidInputError(f"{what} {value!r} is not a duration; write e.g. 7d, 12h, 30m, 90s or 0")
    return int(float(m[1]) * _UNITS[m[2] or "s"])


def table_props(store: "TableStore", tbl: "Table") -> dict[str, str]:
    """The maintenance settings of a table: its own properties over the lake's (catalog) ones."""
    return {**store.config.properties, **tbl.properties}


def _int(props: dict[str, str], key: str, default: int) -> int:
    try:
        return int(props.get(key, default))
    except (TypeError, ValueError):
        return default


# -- snapshot expiry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionPolicy:
    """Which snapshots time travel keeps (see the module docstring)."""

    max_age_ms: int = 7 * DAY_MS
    min_snapshots: int = 10
    keep_all_ms: int = 60_000
    hourly_ms: int = DAY_MS

    @classmethod
    def for_table(cls, props: dict[str, str], retain_ms: int | None = None) -> "RetentionPolicy":
        d = cls()
        max_age = retain_ms if retain_ms is not None else _int(props, MAX_AGE, d.max_age_ms)
        return cls(max_age_ms=max_age, min_snapshots=max(1, _int(props, MIN_KEEP, d.min_snapshots)),
                   keep_all_ms=min(_int(props, KEEP_ALL, d.keep_all_ms), max_age),
                   hourly_ms=min(_int(props, HOURLY, d.hourly_ms), max_age))

    def expirable(self, metadata: Any, now_ms: int) -> list[int]:
        """Ids of the snapshots of ``metadata`` this policy lets go, oldest first."""
        snaps = sorted(metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0), reverse=True)
        keep = {ref.snapshot_id for ref in metadata.refs.values()}
        keep.update(s.snapshot_id for s in snaps[: self.min_snapshots])
        buckets: set[tuple[str, int]] = set()
        out = []
        anchored = False
        for s in snaps:  # newest first, so the first one seen in a bucket is its last snapshot
            age = now_ms - s.timestamp_ms
            if age <= self.keep_all_ms:
                continue
            if age <= self.max_age_ms:
                b = ("h", s.timestamp_ms // HOUR_MS) if age <= self.hourly_ms else ("d", s.timestamp_ms // DAY_MS)
                if b not in buckets:
                    buckets.add(b)
                    continue
            elif not anchored:  # the state as of the window's start: "AS OF" reaches the whole window
                anchored = True
                continue
            if s.snapshot_id not in keep:
                out.append(s.snapshot_id)
        return out[::-1]


def expire_snapshots(tbl: "Table", policy: RetentionPolicy, now_ms: int, *, dry_run: bool = False,
                     deadline: float = 60.0) -> tuple[int, "Table"]:
    """Expire what ``policy`` lets go; returns (snapshots expired, the table after).

    A race with another commit or expiry is retried (:func:`~lakeml.storage.retry.retry_commit`);
    :class:`~lakeml.errors.CommitError` when it keeps losing for ``deadline`` seconds."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table.update.snapshot import ExpireSnapshots

    from lakeml.storage.compaction import _transaction_class
    from lakeml.storage.retry import retry_commit
    from lakeml.storage.tables import table_name

    def attempt(n: int) -> int:
        if n:
            tbl.refresh()
        ids = policy.expirable(tbl.metadata, now_ms)
        if ids and not dry_run:
            tx = _transaction_class()(tbl)
            ExpireSnapshots(tx).by_ids(ids).commit()
            tx.commit_transaction()
        return len(ids)

    # ValueError: a snapshot to expire was expired by another process meanwhile
    n = retry_commit(attempt, what=f"snapshot expiry of {table_name(tbl)}", deadline=deadline,
                     retry_on=(CommitFailedException, ValueError))
    return n, tbl


# -- reports --------------------------------------------------------------------------------------
@dataclass
class TableReport:
    """What one maintenance pass did to one table."""

    table: str
    files_before: int = 0
    files_after: int = 0
    max_files_per_partition_before: int = 0
    max_files_per_partition_after: int = 0
    manifests_before: int = 0
    manifests_after: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    files_rewritten: int = 0
    bytes_rewritten: int = 0
    orphans_deleted: int = 0
    orphans_kept_young: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_freed: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MaintenanceReport:
    """What :meth:`Lake.maintain` did, per table."""

    tables: list[TableReport] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def files_before(self) -> int:
        return sum(t.files_before for t in self.tables)

    @property
    def files_after(self) -> int:
        return sum(t.files_after for t in self.tables)

    @property
    def bytes_freed(self) -> int:
        return sum(t.bytes_freed for t in self.tables)

    def table(self, name: str) -> TableReport:
        return next(t for t in self.tables if t.table == name)

    def as_dict(self) -> dict[str, Any]:
        return {"tables": [t.as_dict() for t in self.tables], "seconds": self.seconds, "dry_run": self.dry_run,
                "files_before": self.files_before, "files_after": self.files_after, "bytes_freed": self.bytes_freed}


class Progress:
    """A no-op progress sink; the CLI passes one that draws tqdm bars."""

    def start(self, desc: str, total: int, unit: str = "it") -> None: ...

    def update(self, n: int) -> None: ...

    def done(self) -> None: ...


# -- one table ------------------------------------------------------------------------------------
def maintain_table(store: "TableStore", name: str, *, now_ms: int, dry_run: bool = False,
                   retain_ms: int | None = None, orphan_age_ms: int = DEFAULT_ORPHAN_AGE_MS,
                   compaction: CompactionPolicy | None = None, do_compact: bool = True, do_expire: bool = True,
                   do_orphans: bool = True, progress: Progress | None = None, measure: bool = True,
                   table: "Table | None" = None) -> TableReport:
    """Compact, merge manifests, expire snapshots and delete orphans of lakeml table ``name``.

    ``measure=False`` skips re-reading the table at the end for the "after" numbers, and ``table``
    is a current Table object to start from (automatic maintenance, in the committer's thread)."""
    start = time.perf_counter()
    progress = progress or Progress()
    rep = TableReport(name, dry_run=dry_run)
    tbl = table if table is not None else _load(store, name)
    files = live_files(tbl)
    rep.files_before = rep.files_after = len(files)
    rep.max_files_per_partition_before = rep.max_files_per_partition_after = _max_per_part(files)
    rep.snapshots_before = rep.snapshots_after = len(tbl.metadata.snapshots)
    snap = tbl.current_snapshot()
    rep.manifests_before = rep.manifests_after = len(snap.manifests(tbl.io)) if snap else 0
    policy = compaction or CompactionPolicy(small_file_bytes=_int(table_props(store, tbl), SMALL_FILE, 32 << 20))
    props = store.config.properties

    if do_compact and snap is not None:
        todo = sum(f.file_size_in_bytes for f in files if f.file_size_in_bytes < policy.small_file_bytes)
        progress.start(f"compact {name}", todo, "B")
        res: CompactionResult = compact(tbl, policy, dry_run=dry_run, progress=progress.update,
                                        refresh=lambda: _load(store, name))
        progress.done()
        rep.files_rewritten, rep.bytes_rewritten = res.files_rewritten, res.bytes_rewritten
        rep.notes += res.notes
        if not dry_run:
            if res.snapshot_id is None or res.conflicts:  # else the commit updated ``tbl`` in place
                tbl = _load(store, name)
            if res.snapshot_id is None and rep.manifests_before > 1:
                rewrite_manifests(tbl)
                tbl = _load(store, name)
    if do_expire:
        policy_r = RetentionPolicy.for_table(table_props(store, tbl), retain_ms)
        n, tbl = expire_snapshots(tbl, policy_r, now_ms, dry_run=dry_run)
        if dry_run:
            rep.notes.append(f"would expire {n} snapshots")
    if do_orphans:
        progress.start(f"orphans {name}", 0, "files")
        o: OrphanResult = remove_orphans(tbl, props, older_than_ms=orphan_age_ms, now_ms=now_ms, dry_run=dry_run,
                                         reload=lambda: _load(store, name), progress=progress.update)
        progress.done()
        rep.orphans_deleted, rep.orphans_kept_young, rep.bytes_freed = o.deleted, o.kept_young, o.bytes_freed
        rep.bytes_before = o.bytes_total
        rep.bytes_after = o.bytes_total - o.bytes_freed
        rep.notes += [f"could not delete {f}" for f in o.failed]
    if not dry_run and measure:
        tbl = _load(store, name)
        files = live_files(tbl)
        rep.files_after = len(files)
        rep.max_files_per_partition_after = _max_per_part(files)
        rep.snapshots_after = len(tbl.metadata.snapshots)
        snap = tbl.current_snapshot()
        rep.manifests_after = len(snap.manifests(tbl.io)) if snap else 0
    elif do_compact:
        groups = {partition_key(f) for f in files}
        rep.files_after = rep.files_before - rep.files_rewritten + min(len(groups), rep.files_rewritten)
    rep.seconds = time.perf_counter() - start
    return rep


def _load(store: "TableStore", name: str) -> "Table":
    """A fresh Table object of its own (the committer's cached one is never mutated from here)."""
    try:
        return store.catalog.load_table(store.identifier(name))
    except Exception as e:
        raise StorageError(f"cannot load table {store.identifier(name)}: {type(e).__name__}: {e}") from e


def _max_per_part(files: list[Any]) -> int:
    return max(files_per_partition(files).values(), default=0)


# -- automatic maintenance ------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoPolicy:
    """When the committer maintains a table by itself (all configurable, see docs/health.md)."""

    enabled: bool = True
    max_files_per_partition: int = 4
    max_expirable_snapshots: int = 16
    max_metadata_bytes: int = 4 << 20
    orphan_interval_ms: int = HOUR_MS
    small_file_bytes: int = 8 << 20

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "AutoPolicy":
        d = cls()
        enabled = str(props.get(AUTO, "true")).strip().lower() not in ("false", "0", "no", "off")
        return cls(enabled=enabled,
                   max_files_per_partition=max(2, _int(props, AUTO_FILES, d.max_files_per_partition)),
                   max_expirable_snapshots=max(1, _int(props, AUTO_SNAPSHOTS, d.max_expirable_snapshots)),
                   max_metadata_bytes=_int(props, AUTO_METADATA_BYTES, d.max_metadata_bytes),
                   orphan_interval_ms=_int(props, AUTO_ORPHAN_INTERVAL, d.orphan_interval_ms),
                   small_file_bytes=_int(props, SMALL_FILE, d.small_file_bytes))


@dataclass
class _TableState:
    added_files: int = 0
    commits: int = 0
    last_orphans_ms: int = 0
    due: bool = False


class AutoMaintainer:
    """Watches the committer's commits and maintains a table once it crosses a threshold.

    ``note_commit`` is cheap (counters); ``run_due`` does the work, in the committer's
    thread between commits. Thresholds: small files in one partition, expirable
    snapshots, and bytes of table metadata (checked every 50 commits). Orphans are
    cleaned at most every ``orphan_interval_ms`` per table.
    """

    def __init__(self, store: "TableStore", policy: AutoPolicy, *, clock: Callable[[], int] | None = None):
        self.store = store
        self.policy = policy
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._state: dict[str, _TableState] = {}
        self._lock = threading.Lock()
        self.runs: list[TableReport] = []  # what it did, newest last (bounded)
        self.compactions = 0
        self.expiries = 0
        self.orphan_passes = 0

    @classmethod
    def from_config(cls, store: "TableStore", props: dict[str, str]) -> "AutoMaintainer | None":
        policy = AutoPolicy.from_properties(props)
        return cls(store, policy) if policy.enabled else None

    def note_commit(self, table: str, tbl: "Table") -> None:
        with self._lock:
            st = self._state.setdefault(table, _TableState(last_orphans_ms=self.clock()))
            st.commits += 1
            snap = tbl.current_snapshot()
            if snap is not None and snap.summary is not None:
                st.added_files += int(snap.summary.get("added-data-files", "0") or 0)
            if st.added_files >= self.policy.max_files_per_partition or st.commits % 8 == 0:
                st.due = True

    def run_due(self) -> None:
        with self._lock:
            due = [t for t, st in self._state.items() if st.due]
        for table in due:
            self._run(table)

    def _run(self, table: str) -> None:
        st = self._state[table]
        st.due = False
        now = self.clock()
        tbl = self.store.table(table)
        p = self.policy
        compact_now = False
        if st.added_files >= p.max_files_per_partition:
            st.added_files = 0
            small = [f for f in live_files(tbl) if f.file_size_in_bytes < p.small_file_bytes]
            compact_now = _max_per_part(small) >= p.max_files_per_partition
        retention = RetentionPolicy.for_table(table_props(self.store, tbl))
        expire_now = len(retention.expirable(tbl.metadata, now)) >= p.max_expirable_snapshots
        if not expire_now and st.commits % 50 == 0 and p.max_metadata_bytes > 0:
            expire_now = _metadata_bytes(tbl) > p.max_metadata_bytes
        orphans_now = now - st.last_orphans_ms >= p.orphan_interval_ms
        if not (compact_now or expire_now or orphans_now):
            return
        policy = CompactionPolicy(small_file_bytes=p.small_file_bytes, min_files=p.max_files_per_partition)
        rep = maintain_table(self.store, table, now_ms=now, compaction=policy, do_compact=compact_now,
                             do_expire=expire_now, do_orphans=orphans_now, measure=False,
                             table=self.store.reload(table))
        if orphans_now:
            st.last_orphans_ms = now
            self.orphan_passes += 1
        self.compactions += int(compact_now)
        self.expiries += int(expire_now)
        self.runs = (self.runs + [rep])[-50:]
        self.store.reload(table)  # the committer's next append starts from the maintained head
        log.info("auto-maintained %s: %d files rewritten, %d snapshots before, %.2fs", table,
                 rep.files_rewritten, rep.snapshots_before, rep.seconds)


def _metadata_bytes(tbl: "Table") -> int:
    try:
        return len(tbl.io.new_input(tbl.metadata_location))
    except Exception:  # a stat that fails is no reason to maintain
        return 0


def now_ms_from(now: datetime | int | None, clock: Callable[[], int]) -> int:
    """Milliseconds since the epoch: an explicit datetime/ms, else the lake's µs clock."""
    if now is None:
        return clock() // 1000
    if isinstance(now, datetime):
        return int(now.timestamp() * 1000)
    if isinstance(now, int):
        return now
    raise InvalidInputError(f"now={now!r} must be a datetime or milliseconds since the epoch")


def existing_tables(store: "TableStore", names: list[str] | None = None) -> list[str]:
    """The lakeml tables that exist in the catalog (never creates one), optionally a subset."""
    known = sorted(store.contracts)
    if names:
        bad = [n for n in names if n not in store.contracts]
        if bad:
            raise InvalidInputError(f"unknown lakeml table(s) {', '.join(map(repr, bad))}; "
                                    f"known tables: {', '.join(known)}")
        known = [n for n in known if n in names]
    try:
        present = {t[-1] for t in store.catalog.list_tables(store.namespace)}
    except Exception as e:
        from pyiceberg.exceptions import NoSuchNamespaceError

        if isinstance(e, NoSuchNamespaceError):
            return []
        raise StorageError(f"cannot list the tables of {store.namespace}: {e}") from e
    return [n for n in known if n in present]
