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

    @property
    def num_rows(self) -> int:
        return self.data.num_rows


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
    retried later, never dropped). ``spool`` (optional) makes batches durable
    on local disk before they are committed.
    """

    def __init__(self, store: "TableStore", *, interval: float = 1.0, max_rows: int = 500_000,
                 deadline: float = 120.0, spool: Any = None, sort: bool = True,
                 on_commit: Callable[[str, int], None] | None = None):
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self.deadline = deadline
        self.spool = spool
        self.sort = sort
        self.on_commit = on_commit
        self.stats = CommitStats()
        self.last_error: BaseException | None = None
        self._writer = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._buffers: dict[str, RowBuffer] = {}
        self._buffers_lock = threading.Lock()
        self._pending: list[Batch] = []
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
        return sum(len(b) for b in self._buffers.values()) + sum(b.num_rows for b in self._pending)

    # -- consumer side -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            with self._buffers_lock:
                if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._loop, name="lakeml-committer", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.run_once(raise_errors=False)
            except BaseException as e:  # never let the thread die silently
                self.last_error = e
                log.exception("lakeml committer tick failed")

    def run_once(self, *, raise_errors: bool = True, deadline: float | None = None) -> int:
        """Take every buffer and commit it plus anything still pending; returns rows committed."""
        with self._commit_lock:
            self._take_new_batches()
            committed = 0
            failures: list[BaseException] = []
            for batch in list(self._pending):
                try:
                    self._commit(batch, deadline if deadline is not None else self.deadline)
                except CommitError as e:
                    failures.append(e)
                    self.last_error = e
                    continue
                self._pending.remove(batch)
                committed += batch.num_rows
            if failures and raise_errors:
                raise failures[0]
            if not failures:
                self.last_error = None
            return committed

    def _take_new_batches(self) -> None:
        with self._buffers_lock:
            buffers = list(self._buffers.values())
        for buf in buffers:
            rows, chunks = buf.take(), buf.take_arrow()
            if rows or chunks:
                batch = Batch(buf.table, self._to_arrow(buf.table, rows, chunks))
                if self.spool is not None:
                    self.spool.write(batch)
                self._pending.append(batch)

    def adopt(self, batch: Batch) -> None:
        """Queue an already-built batch (spool recovery, a server's client upload)."""
        with self._commit_lock:
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
                if uncertain and is_committed(tbl, batch.batch_id):
                    self.stats.duplicates_avoided += 1
                    break
                append(tbl, batch.data, {BATCH_ID: batch.batch_id, WRITER: self._writer})
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
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
        self.stats.commits += 1
        self.stats.rows += batch.num_rows
        self.stats.seconds += time.monotonic() - start
        if self.spool is not None:
            self.spool.mark_committed(batch)
        if self.on_commit is not None:
            self.on_commit(batch.table, batch.num_rows)

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
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            _LIVE.discard(self)


def is_committed(tbl: Any, batch_id: str, lookback: int = 200) -> bool:
    """True if a snapshot of ``tbl`` carries ``batch_id`` (checks the newest ``lookback``)."""
    snaps = tbl.metadata.snapshots[-lookback:]
    return any(s.summary is not None and s.summary.get(BATCH_ID) == batch_id for s in reversed(snaps))


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
