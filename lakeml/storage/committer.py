"""The background committer: in-memory row buffers -> few large Iceberg appends.

Logging calls append a tuple to a :class:`RowBuffer` (no I/O, no pyiceberg).
A daemon thread wakes on a time or size threshold, turns every buffer into one
Arrow table per Iceberg table, and appends it with a batch id in the snapshot
summary. Conflicts and storage faults are retried with reload and backoff until
the data is in or the deadline passes; a batch whose commit outcome is unknown
is looked up by its batch id before it is retried, so nothing lands twice.

The committer holds no per-run state, so one instance can serve many clients
(a tracking server runs one for all of them).
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lakeml.errors import CommitError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.committer")

BATCH_ID = "lakeml.batch-id"
BATCH_IDS = "lakeml.batch-ids"  # every batch a merged commit holds (comma-separated)
MAX_MERGE = 64  # batches merged into one commit at most (bounds the summary)
WRITER = "lakeml.writer"

_LIVE: "weakref.WeakSet[Committer]" = weakref.WeakSet()


class RowBuffer:
    """A thread-safe list of row tuples for one table, in contract column order."""

    __slots__ = ("table", "rows", "lock", "_wake", "_limit", "chunks", "_chunk_rows")

    def __init__(self, table: str, wake: threading.Event, limit: int):
        self.table = table
        self.rows: list[tuple] = []
        self.chunks: list[Any] = []  # Arrow tables in the contract schema (columnar fast path)
        self._chunk_rows = 0
        self.lock = threading.Lock()
        self._wake = wake
        self._limit = limit

    def add(self, row: tuple) -> None:
        with self.lock:
            self.rows.append(row)
            if len(self.rows) >= self._limit:
                self._wake.set()

    def extend(self, rows: list[tuple]) -> None:
        with self.lock:
            self.rows.extend(rows)
            if len(self.rows) >= self._limit:
                self._wake.set()

    def add_arrow(self, data: "pa.Table") -> None:
        """Append an Arrow table already in the contract's schema (no per-row Python work)."""
        with self.lock:
            self.chunks.append(data)
            self._chunk_rows += data.num_rows
            if len(self.rows) + self._chunk_rows >= self._limit:
                self._wake.set()

    def take(self) -> list[tuple]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def take_arrow(self) -> list["pa.Table"]:
        with self.lock:
            chunks, self.chunks, self._chunk_rows = self.chunks, [], 0
        return chunks

    def __len__(self) -> int:
        return len(self.rows) + self._chunk_rows


@dataclass
class Batch:
    """Rows of one table on their way into Iceberg, with their idempotency key."""

    table: str
    data: "pa.Table"
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    spool_path: Any = None  # the spool segment it was recovered from, if any
    parts: list["Batch"] = field(default_factory=list)  # the batches a merged batch holds

    @property
    def num_rows(self) -> int:
        return self.data.num_rows

    @property
    def ids(self) -> list[str]:
        return [b.batch_id for b in self.parts] if self.parts else [self.batch_id]


@dataclass
class CommitStats:
    commits: int = 0
    rows: int = 0
    retries: int = 0
    duplicates_avoided: int = 0
    seconds: float = 0.0


class Committer:
    """Turns buffered rows into Iceberg appends, in a background thread.

    ``interval``: seconds between commits; ``max_rows``: a buffer this large
    wakes the thread early; ``deadline``: seconds a batch may keep failing
    before :meth:`flush` raises :class:`CommitError` (the batch is kept and
    retried later, never dropped). ``spool`` (optional, a
    :class:`~lakeml.storage.spool.Spool`) makes batches durable on local disk
    before they are committed; ``maintainer`` (optional, an
    :class:`~lakeml.storage.maintenance.AutoMaintainer`) is told about each commit
    and runs due maintenance in this thread between commits.
    """

    def __init__(self, store: "TableStore", *, interval: float = 1.0, max_rows: int = 500_000,
                 deadline: float = 120.0, spool: Any = None, sort: bool = True,
                 on_commit: Callable[[str, int], None] | None = None, maintainer: Any = None):
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self.deadline = deadline
        self.spool = spool
        self.sort = sort
        self.on_commit = on_commit
        self.maintainer = maintainer
        self.stats = CommitStats()
        self.last_error: BaseException | None = None
        self._writer = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._buffers: dict[str, RowBuffer] = {}
        self._buffers_lock = threading.Lock()
        self._pending: list[Batch] = []
        self._pending_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        _LIVE.add(self)

    # -- producer side -------------------------------------------------------------------------
    def buffer(self, table: str) -> RowBuffer:
        """The row buffer of ``table`` (created on first use); starts the thread."""
        buf = self._buffers.get(table)
        if buf is None:
            with self._buffers_lock:
                buf = self._buffers.setdefault(table, RowBuffer(table, self._wake, self.max_rows))
            self._ensure_thread()
        return buf

    def pending_rows(self) -> int:
        with self._pending_lock:
            pending = sum(b.num_rows for b in self._pending)
        return sum(len(b) for b in self._buffers.values()) + pending

    def sync(self) -> int:
        """Move everything buffered so far into the spool (fsync) without waiting for Iceberg.

        Returns the rows spooled. Without a spool this only queues the rows for the next commit.
        """
        return self._take_new_batches()

    # -- consumer side -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            with self._buffers_lock:
                if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                    # Import pyarrow here, not first in the thread: code that looks it up in sys.modules
                    # (scikit-learn does, on every fit) must never see it half-initialised.
                    import pyarrow  # noqa: F401
                    self._pid = os.getpid()
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._loop, name="lakeml-committer", daemon=True)
                    self._thread.start()
                    if self.spool is not None:  # spools on its own cadence, whatever a commit costs
                        self._spooler = threading.Thread(target=self._spool_loop, name="lakeml-spooler",
                                                         daemon=True)
                        self._spooler.start()

    def _spool_loop(self) -> None:
        pid = self._pid
        while not self._stop.wait(getattr(self.spool, "interval", 0.2)) and self._pid == pid:
            try:
                self._take_new_batches()
                self.spool.heartbeat()
            except BaseException as e:  # pragma: no cover - never let the thread die silently
                log.warning("lakeml spooler tick failed (%s: %s)", type(e).__name__, e)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.run_once(raise_errors=False)
            except BaseException as e:  # never let the thread die silently
                self.last_error = e
                log.exception("lakeml committer tick failed")
            if self.maintainer is not None and not self._stop.is_set():
                try:
                    with self._commit_lock:  # never race this process's own appends (commit conflicts)
                        self.maintainer.run_due()
                except BaseException as e:  # maintenance is best effort; logging goes on
                    log.warning("automatic maintenance failed (%s: %s)", type(e).__name__, e)

    def run_once(self, *, raise_errors: bool = True, deadline: float | None = None) -> int:
        """Take every buffer and commit it plus anything still pending; returns rows committed."""
        with self._commit_lock:
            self._take_new_batches()
            committed = 0
            failures: list[BaseException] = []
            todo = self._merge_pending()
            for batch in todo:
                try:
                    self._commit(batch, deadline if deadline is not None else self.deadline)
                except CommitError as e:
                    failures.append(e)
                    self.last_error = e
                    continue
                with self._pending_lock:
                    self._pending.remove(batch)
                committed += batch.num_rows
            if failures and raise_errors:
                raise failures[0]
            if not failures:
                self.last_error = None
            return committed

    def _take_new_batches(self) -> int:
        with self._buffers_lock:
            buffers = list(self._buffers.values())
        taken = 0
        with self._drain_lock:
            for buf in buffers:
                rows, chunks = buf.take(), buf.take_arrow()
                if rows or chunks:
                    batch = Batch(buf.table, self._to_arrow(buf.table, rows, chunks))
                    if self.spool is not None:
                        try:
                            self.spool.write(batch)
                        except Exception as e:  # the rows stay in memory and are committed as usual
                            log.warning("rows not spooled (%s: %s)", type(e).__name__, e)
                    with self._pending_lock:
                        self._pending.append(batch)
                    taken += batch.num_rows
        return taken

    def _merge_pending(self) -> list[Batch]:
        """Pending batches, those of one table not yet attempted merged into one commit each."""
        import pyarrow as pa

        with self._pending_lock:
            out: list[Batch] = []
            fresh: dict[str, list[Batch]] = {}
            for b in self._pending:
                if b.attempts == 0 and not b.parts:
                    group = fresh.setdefault(b.table, [])
                    if len(group) < MAX_MERGE:
                        group.append(b)
                        continue
                out.append(b)
            for table, group in fresh.items():
                if len(group) == 1:
                    out.append(group[0])
                    continue
                data = pa.concat_tables([g.data for g in group])
                contract = self.store.contracts.get(table)
                if self.sort and contract is not None and contract.sort and not is_sorted(data, contract.sort):
                    data = data.sort_by([(c, "ascending") for c in contract.sort])
                out.append(Batch(table, data, batch_id=group[0].batch_id, parts=group,
                                 created_ms=min(g.created_ms for g in group)))
            self._pending = out
            return list(out)

    def adopt(self, batch: Batch) -> None:
        """Queue an already-built batch (spool recovery, a server's client upload)."""
        with self._pending_lock:
            self._pending.append(batch)
        self._ensure_thread()

    def _to_arrow(self, table: str, rows: list[tuple], chunks: list["pa.Table"] = ()) -> "pa.Table":
        return rows_to_arrow(self.store.contracts[table], rows, sort=self.sort, chunks=chunks)

    def _commit(self, batch: Batch, deadline_s: float) -> None:
        from pyiceberg.exceptions import CommitFailedException

        from lakeml.storage.tables import append

        start = time.monotonic()
        stop_at = start + deadline_s
        delay = 0.05
        uncertain = batch.attempts > 0
        while True:
            batch.attempts += 1
            try:
                tbl = self.store.table(batch.table, refresh=uncertain)
                if uncertain and batch_landed(tbl, batch):
                    self.stats.duplicates_avoided += 1
                    break
                props = {BATCH_ID: batch.batch_id, WRITER: self._writer}
                if batch.parts:
                    props[BATCH_IDS] = ",".join(batch.ids)
                append(tbl, batch.data, props)
                break
            except CommitFailedException as e:
                err: BaseException = e
            except Exception as e:  # storage hiccup, catalog lock, timeout: outcome unknown
                err = e
            uncertain = True
            self.stats.retries += 1
            if time.monotonic() + delay > stop_at:
                raise CommitError(
                    f"could not commit {batch.num_rows} rows to {self.store.identifier(batch.table)} within "
                    f"{deadline_s:.0f}s ({type(err).__name__}: {err}). The rows are kept and retried; check "
                    "storage with 'lakeml doctor'.") from err
            log.warning("commit to %s failed (%s: %s); retrying in %.2fs", batch.table, type(err).__name__, err, delay)
            self._pause(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
        self.stats.commits += 1
        self.stats.rows += batch.num_rows
        self.stats.seconds += time.monotonic() - start
        if self.spool is not None:
            for part in batch.parts or [batch]:
                self.spool.mark_committed(part)
        if self.maintainer is not None:
            self.maintainer.note_commit(batch.table, tbl)
        if self.on_commit is not None:
            self.on_commit(batch.table, batch.num_rows)

    def _pause(self, seconds: float) -> None:
        """Back off between attempts, still moving new rows into the spool meanwhile."""
        end = time.monotonic() + seconds
        while True:
            if self.spool is not None:
                try:
                    self._take_new_batches()
                except Exception as e:  # pragma: no cover - a bad row must not stop the retry
                    log.warning("could not spool new rows during a retry (%s: %s)", type(e).__name__, e)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, max(self.interval, 0.05)))

    def flush(self, timeout: float | None = None) -> None:
        """Commit everything logged so far; returns once it is in Iceberg.

        Raises :class:`CommitError` if storage stays down for ``timeout``
        seconds (default: the committer's deadline). Nothing is dropped.
        """
        self.run_once(raise_errors=True, deadline=timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread."""
        try:
            self.flush(timeout)
        finally:
            self._stop.set()
            self._wake.set()
            for t in (self._thread, getattr(self, "_spooler", None)):
                if t is not None and t is not threading.current_thread():
                    t.join(timeout=5)
            if self.spool is not None and not self._pending:
                self.spool.close()
            _LIVE.discard(self)


def is_committed(tbl: Any, batch_id: str, lookback: int | None = None) -> bool:
    """True if a snapshot of ``tbl`` carries ``batch_id`` (the newest ``lookback``, default all)."""
    snaps = tbl.metadata.snapshots if lookback is None else tbl.metadata.snapshots[-lookback:]
    for s in reversed(snaps):
        props = s.summary.additional_properties if s.summary is not None else {}
        if props.get(BATCH_ID) == batch_id or batch_id in (props.get(BATCH_IDS) or "").split(","):
            return True
    return False


def batch_landed(tbl: Any, batch: Batch) -> bool:
    """Did an earlier attempt of ``batch`` commit? (``tbl`` freshly loaded.)

    The answer comes from the snapshot summaries (batch ids) when the table's history
    since the batch was created is complete. When snapshot expiry has removed part of
    that window, the rows themselves are looked up instead: the batch landed if every
    one of its rows is in the table.
    """
    if is_committed(tbl, batch.batch_id):  # a merged batch's ids were committed together
        return True
    if history_covers(tbl, batch.created_ms - 1000):
        return False
    log.info("history of %s since batch %s was expired; checking its rows", tbl.name(), batch.batch_id)
    return rows_present(tbl, batch.data)


def history_covers(tbl: Any, since_ms: int) -> bool:
    """True if every snapshot committed to ``main`` since ``since_ms`` is still in the metadata."""
    snap = tbl.current_snapshot()
    if snap is None:
        return True
    while snap is not None:
        if snap.timestamp_ms < since_ms:
            return True
        if snap.parent_snapshot_id is None:
            # the first snapshot ever has sequence number 1; expiry also cuts the parent link
            # of the oldest snapshot it keeps, so a later "root" means history was removed
            return (snap.sequence_number or 0) == 1
        snap = tbl.snapshot_by_id(snap.parent_snapshot_id)
    return False


def rows_present(tbl: Any, data: "pa.Table") -> bool:
    """True if every row of ``data`` (as a multiset) is in ``tbl``."""
    import json
    from collections import Counter

    from pyiceberg.expressions import In

    if data.num_rows == 0:
        return True
    key = "run_id" if "run_id" in data.column_names else data.column_names[0]
    values = sorted({v for v in data.column(key).to_pylist() if v is not None})
    scan = tbl.scan(row_filter=In(key, values)) if values and len(values) <= 1000 else tbl.scan()
    have = scan.to_arrow().select(data.column_names)

    def keys(t: "pa.Table") -> Counter:
        return Counter(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())

    want, got = keys(data), keys(have)
    return all(got[k] >= n for k, n in want.items())


def rows_to_arrow(contract: Any, rows: list[tuple], *, sort: bool = True, chunks: Any = ()) -> "pa.Table":
    """Build an Arrow table in the contract's schema from row tuples (timestamps as int µs),
    plus ``chunks`` (Arrow tables already in that schema); sorted by the contract's sort order."""
    import pyarrow as pa

    schema = contract.arrow_schema()
    parts = list(chunks)
    if rows or not parts:
        # One list comprehension per column: cheaper than zip(*rows), which builds huge GC-tracked tuples.
        arrays = [pa.array([r[i] for r in rows], fld.type) for i, fld in enumerate(schema)]
        parts.insert(0, pa.Table.from_arrays(arrays, schema=schema))
    data = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    if sort and contract.sort and data.num_rows > 1 and not is_sorted(data, contract.sort):
        data = data.sort_by([(c, "ascending") for c in contract.sort])
    return data


def is_sorted(data: "pa.Table", columns: Any) -> bool:
    """True if ``data`` is already in ascending order of ``columns`` (nulls count as unsorted).

    A few vectorised comparisons, much cheaper than a sort of a table that is usually sorted
    (one run logging one metric step after step)."""
    import pyarrow.compute as pc

    n = data.num_rows
    tie = None  # rows i whose earlier sort columns equal those of row i+1
    for name in columns:
        col = data.column(name)
        if col.null_count:
            return False
        a, b = col.slice(0, n - 1), col.slice(1)
        worse = pc.greater(a, b)
        if tie is not None:
            worse = pc.and_(worse, tie)
        if pc.any(worse).as_py():
            return False
        eq = pc.equal(a, b)
        tie = eq if tie is None else pc.and_(tie, eq)
        if not pc.any(tie).as_py():
            return True
    return True


_BEFORE_EXIT_FLUSH: list[Callable[[], None]] = []


def on_exit(fn: Callable[[], None]) -> None:
    """Run ``fn`` at interpreter exit, just before the final flush (the fluent API ends its runs there)."""
    if fn not in _BEFORE_EXIT_FLUSH:
        _BEFORE_EXIT_FLUSH.append(fn)


def _flush_all_at_exit() -> None:
    for fn in list(_BEFORE_EXIT_FLUSH):
        try:
            fn()
        except BaseException as e:  # pragma: no cover - reported, not raised, at exit
            log.error("lakeml: exit hook %s failed: %s", getattr(fn, "__name__", fn), e)
    for c in list(_LIVE):
        if c._pid != os.getpid():
            continue
        try:
            c.close(timeout=min(c.deadline, 30.0))
        except BaseException as e:  # pragma: no cover - reported, not raised, at exit
            log.error("lakeml: could not commit buffered rows at exit: %s", e)


def _register_exit_flush() -> None:
    """Flush at exit while pyiceberg can still write.

    pyiceberg writes through ``concurrent.futures`` executors, which refuse new work once the
    interpreter starts shutting down, before any ``atexit`` handler runs. Threading exit hooks run
    in reverse order of registration, so one registered after ``concurrent.futures.thread`` has
    registered its own runs first, while the executors still work.
    """
    import concurrent.futures.thread  # noqa: F401 - registers its shutdown hook before ours

    try:
        threading._register_atexit(_flush_all_at_exit)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # pragma: no cover - other interpreters, or already exiting
        atexit.register(_flush_all_at_exit)


_register_exit_flush()
