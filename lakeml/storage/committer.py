"""The background committer: in-memory row buffers -> few large Iceberg appends.

Logging calls append a tuple to a :class:`RowBuffer` (no I/O, no pyiceberg).
:meth:`Committer.handoff` (a run's end) moves every buffer into the local spool with one
fsync and returns; a daemon thread commits what is pending once per tick, all batches of
one table merged into one Iceberg append whose snapshot summary carries their batch ids
(as ranges, so a tick that merges thousands of runs still has a short summary). Conflicts
and storage faults are retried with reload and backoff (:func:`~lakeml.storage.retry.retry_commit`)
until the data is in or the deadline passes; a batch whose commit outcome is unknown is
looked up by its batch id before it is retried, so nothing lands twice. A row that cannot
be stored (e.g. a string with lone surrogates) is set aside in a quarantine file with a
logged error; the rest of its batch is committed.

The committer holds no per-run state, so one instance can serve many clients
(a tracking server runs one for all of them).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import marshal
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from lakeml.errors import CommitError, StorageError
from lakeml.storage.drain import exit_drain_mode

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.committer")

BATCH_ID = "lakeml.batch-id"
BATCH_IDS = "lakeml.batch-ids"  # every batch a merged commit holds: ids and id ranges, comma-separated
MAX_MERGE_TOKENS = 64  # id tokens (one id, or a range of consecutive ids) in one merged commit's summary
WRITER = "lakeml.writer"
TICK_BACKOFF = 3.0  # after a tick that took t seconds, the next one waits max(interval, 3 t)
QUARANTINE_KEEP = 1000  # bad rows kept in memory (Committer.quarantined); the files keep them all

_LIVE: "weakref.WeakSet[Committer]" = weakref.WeakSet()
# When a committer that defers pyarrow (see Committer._arrow_ready) wants it imported: the next logging
# call after that time imports it, in the caller's thread, so a long run commits as it goes.
_ARROW_DUE: list[float] = []


def _import_arrow_if_due() -> None:
    if _ARROW_DUE and time.monotonic() >= _ARROW_DUE[0]:
        import pyarrow  # noqa: F401

        _ARROW_DUE.clear()


class LazyBuffer:
    """One table's :class:`RowBuffer`, asked of the committer on first use."""

    __slots__ = ("_committer", "_table")

    def __init__(self, committer: "Committer", table: str):
        self._committer, self._table = committer, table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._committer.buffer(self._table), name)


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
        if _ARROW_DUE:
            _import_arrow_if_due()
        with self.lock:
            self.rows.append(row)
            if len(self.rows) >= self._limit:
                self._wake.set()

    def extend(self, rows: list[tuple]) -> None:
        if _ARROW_DUE:
            _import_arrow_if_due()
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

    def take_all(self) -> tuple[list[tuple], list["pa.Table"]]:
        with self.lock:
            rows, chunks = self.rows, self.chunks
            self.rows, self.chunks, self._chunk_rows = [], [], 0
        return rows, chunks

    def __len__(self) -> int:
        return len(self.rows) + self._chunk_rows


@dataclass
class Batch:
    """Rows of one table on their way into Iceberg, with their idempotency key.

    ``data`` is the Arrow table; until the committer converts them, the rows may still be raw
    tuples (``rows``) plus Arrow ``chunks``."""

    table: str
    data: "pa.Table | None" = None
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    spool_path: Any = None  # the spool file it was recovered from, if any
    parts: list["Batch"] = field(default_factory=list)  # the batches a merged batch holds
    rows: list[tuple] | None = None
    chunks: list[Any] = field(default_factory=list)
    payload: bytes | None = None  # the marshalled rows, between taking them and the spool write
    spooled: bool = False

    @property
    def num_rows(self) -> int:
        if self.data is not None:
            return self.data.num_rows
        return len(self.rows or ()) + sum(c.num_rows for c in self.chunks)

    @property
    def ids(self) -> list[str]:
        return [b.batch_id for b in self.parts] if self.parts else [self.batch_id]

    @property
    def durable(self) -> bool:
        """In the local spool (a merged batch: all of its parts, or itself)."""
        return self.spooled or bool(self.parts) and all(p.spooled for p in self.parts)


@dataclass
class CommitStats:
    commits: int = 0
    rows: int = 0
    retries: int = 0
    duplicates_avoided: int = 0
    quarantined: int = 0
    handoffs: int = 0
    seconds: float = 0.0


class Committer:
    """Turns buffered rows into Iceberg appends, in a background thread.

    ``interval``: seconds between commit ticks (more after a slow tick: commits take at most a quarter of
    the time); ``max_rows``: a buffer this large
    wakes the thread early; ``deadline``: seconds a batch may keep failing
    before :meth:`flush` raises :class:`CommitError` (the batch is kept and
    retried later, never dropped). ``spool`` (optional, a
    :class:`~lakeml.storage.spool.Spool`) makes batches durable on local disk
    before they are committed; ``maintainer`` (optional, an
    :class:`~lakeml.storage.maintenance.AutoMaintainer`) is told about each commit
    and runs due maintenance in this thread between commits. ``quarantine_dir``: where
    rows that cannot be stored are set aside (default: the spool's ``quarantine`` folder).
    """

    def __init__(self, store: "TableStore", *, interval: float = 1.0, max_rows: int = 500_000,
                 deadline: float = 120.0, spool: Any = None, sort: bool = True, maintainer: Any = None,
                 quarantine_dir: str | os.PathLike | None = None):
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self.deadline = deadline
        self.spool = spool
        self.sort = sort
        self.maintainer = maintainer
        self.appender: Any = None  # a storage.commitproc.ChildAppender: appends in a child process
        self.stats = CommitStats()
        self.last_error: BaseException | None = None
        self.spool_error: BaseException | None = None  # the last failed spool write, until one succeeds
        self.quarantined: list[dict[str, Any]] = []  # the newest rows set aside (see _quarantine)
        qdir = quarantine_dir if quarantine_dir is not None else getattr(spool, "quarantine_dir", None)
        self.quarantine_dir = Path(qdir) if qdir is not None else None
        self._writer = f"{socket.gethostname()}:{os.getpid()}"
        self._prefix = uuid.uuid4().hex[:16]
        self._seqs: dict[str, Any] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._buffers: dict[str, RowBuffer] = {}
        self._buffers_lock = threading.Lock()
        self._pending: list[Batch] = []
        self._pending_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._take_lock = threading.Lock()  # held while buffers are taken (see together())
        self._in_flight = 0  # rows taken from the buffers and not yet in _pending (while the spool is written)
        self._commit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._spooler: threading.Thread | None = None
        self._last_tick = 0.0
        self._gap = interval  # seconds until the next tick (longer after slow ticks, see _loop)
        self._pid = os.getpid()
        self.exit_drain = exit_drain_mode(getattr(getattr(store, "config", None), "properties", None) or {})
        # background exit drain with a spool: when this committer started, its pyarrow import deferred
        self._lazy_arrow = time.monotonic() if self.exit_drain == "background" and spool is not None else None
        if self._lazy_arrow is not None and "pyarrow" not in sys.modules and not _ARROW_DUE:
            _ARROW_DUE.append(self._lazy_arrow + interval)
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

    def lazy_buffer(self, table: str) -> "LazyBuffer":
        """Stands for :meth:`buffer` of ``table`` until first used (a reader starts no thread)."""
        return LazyBuffer(self, table)

    def pending_rows(self) -> int:
        """Rows logged and not yet committed: buffered, being taken into the spool, or pending a commit.
        Rows in the middle of a take are counted too, so a read never skips a flush it needs."""
        with self._take_lock:
            buffered = sum(len(b) for b in list(self._buffers.values()))
            with self._pending_lock:
                return buffered + self._in_flight + sum(b.num_rows for b in self._pending)

    def pending_by_table(self) -> dict[str, int]:
        """Rows not yet committed, by table (buffered plus taken and waiting): read-only, for metrics."""
        out = {t: len(b) for t, b in list(self._buffers.items())}
        with self._pending_lock:
            for b in self._pending:
                out[b.table] = out.get(b.table, 0) + b.num_rows
        return out

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Rows added to any buffers inside this block are taken (spooled, committed) in the same take:
        a crash keeps all of them or none. Must not read or flush inside (the block holds the take lock)."""
        with self._take_lock:
            yield

    def handoff(self) -> int:
        """Move every buffered row into the spool (one fsync for all tables) and return without
        waiting for Iceberg; the commit thread commits them within one ``interval``, merged with
        everything else handed off meanwhile. Returns the rows handed off. Without a spool (or when
        writing it fails: logged) the rows are only queued."""
        n = self._take_new_batches()
        self.stats.handoffs += 1
        if n:
            self._ensure_thread()
            # idle: commit now, else at the next tick (a process that leaves its spool to a helper at exit
            # wakes it only once it has lived one interval: a short script never imports the write stack)
            if time.monotonic() - self._last_tick >= self._gap and self._arrow_ready(main_thread=True):
                self._wake.set()
        return n

    def sync(self) -> int:
        """Move everything buffered so far into the spool (fsync) without waiting for Iceberg.

        Returns the rows spooled. Raises :class:`StorageError` when they are not durable: the
        spool is switched off, or writing it failed (the rows stay queued for the next commit).
        """
        n = self._take_new_batches()
        if self.spool is None:
            raise StorageError(
                f"sync(): the local spool is switched off (lakeml.spool-dir=off), so {self.pending_rows()} "
                "rows are only queued in memory and a crash would lose them. Remove 'lakeml.spool-dir=off' "
                "(or set it to a writable folder) to make sync() durable, or call flush() to wait for the commit")
        with self._pending_lock:
            loose = [b for b in self._pending if not b.durable]
        if loose and self._spool(loose):
            loose = []
        if loose:
            e = self.spool_error
            raise StorageError(
                f"sync(): {sum(b.num_rows for b in loose)} rows could not be written to the local spool under "
                f"{self.spool.root} ({type(e).__name__}: {e}); they stay queued in memory and are committed as "
                "usual, but a crash would lose them. Free disk space or set 'lakeml.spool-dir' to a writable "
                "folder, or call flush() to wait for the commit") from e
        return n

    # -- consumer side -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            with self._buffers_lock:
                if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                    # Import pyarrow here, not first in the thread: code that looks it up in sys.modules
                    # (scikit-learn does, on every fit) must never see it half-initialised. A process that
                    # leaves its spool to a helper at exit defers it (see _arrow_ready).
                    if self._lazy_arrow is None:
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

    def _arrow_ready(self, *, main_thread: bool) -> bool:
        """Can this process commit? With ``exit_drain=background`` pyarrow (and the write stack) is not
        imported up front, so that a short script never pays for it; it is imported by the main thread
        at the first run end once the process has lived one commit interval (or by the user's own
        code), never first by the commit thread. Until then ticks only spool."""
        if self._lazy_arrow is None or "pyarrow" in sys.modules:
            return True
        if main_thread and time.monotonic() - self._lazy_arrow >= self.interval:
            import pyarrow  # noqa: F401
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._gap)
            self._last_tick = start = time.monotonic()  # run ends during this tick do not wake another one
            self._wake.clear()
            if not self._arrow_ready(main_thread=False):
                if self.spool is not None:
                    self._take_new_batches()
                continue
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
            self._last_tick = time.monotonic()
            # Commits take at most ~1/(1 + TICK_BACKOFF) of the time: a busy sweep gets fewer, larger commits
            # and keeps the CPU for itself; an idle committer is back to one tick per interval.
            self._gap = max(self.interval, (self._last_tick - start) * TICK_BACKOFF)

    def run_once(self, *, raise_errors: bool = True, deadline: float | None = None) -> int:
        """Take every buffer and commit it plus anything still pending; returns rows committed."""
        with self._commit_lock:
            self._take_new_batches()
            committed = 0
            failures: list[BaseException] = []
            for batch in self._merge_pending():
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

    def commit_batches(self, batches: list[Batch], *, deadline: float | None = None) -> int:
        """Commit already-built batches (spool recovery) with everything pending, merged per table."""
        with self._pending_lock:
            self._pending.extend(batches)
        return self.run_once(raise_errors=True, deadline=deadline)

    def _new_id(self, table: str) -> str:
        """``<committer>-<table>-<n>``: consecutive per table, so a merged commit lists them as a range."""
        counter = self._seqs.get(table)
        if counter is None:
            counter = self._seqs.setdefault(table, itertools.count(1))
        return f"{self._prefix}-{table}-{next(counter)}"

    def _take_new_batches(self) -> int:
        """Move every buffer into a new pending batch, spooled first (one write for all tables)."""
        with self._drain_lock:
            new = []
            with self._take_lock:  # a together() block is wholly before or after this take
                with self._buffers_lock:
                    buffers = list(self._buffers.values())
                taken = [(buf.table, *buf.take_all()) for buf in buffers]
                for table, rows, chunks in taken:
                    if rows or chunks:
                        new.append(Batch(table, rows=rows, chunks=chunks, batch_id=self._new_id(table)))
                n = sum(b.num_rows for b in new)
                with self._pending_lock:
                    self._in_flight += n  # pending_rows() counts them while the spool is written
            if not new:
                return 0
            try:
                if self.spool is not None:
                    self._spool(new)
            finally:
                with self._pending_lock:
                    self._pending.extend(new)
                    self._in_flight -= n
            return n

    def _spool(self, batches: list[Batch]) -> bool:
        """Write ``batches`` to the spool (raw rows by ``marshal``, no Arrow needed); False if it failed."""
        for b in batches:
            if b.data is None and not b.chunks:
                try:
                    b.payload = marshal.dumps(b.rows)
                    continue
                except ValueError:  # a value marshal cannot hold (e.g. a numpy scalar): store Arrow
                    pass
            self.materialize(b)
        try:
            self.spool.write_many(batches)
        except Exception as e:  # the rows stay in memory and are committed as usual
            self.spool_error = e
            log.warning("rows not spooled (%s: %s)", type(e).__name__, e)
            return False
        finally:
            for b in batches:
                b.payload = None
        for b in batches:
            b.spooled = True
        self.spool_error = None
        return True

    def _merge_pending(self) -> list[Batch]:
        """Pending batches, those of one table not yet attempted merged into one commit each
        (up to :data:`MAX_MERGE_TOKENS` id tokens in its summary)."""
        with self._pending_lock:
            out: list[Batch] = []
            groups: dict[str, list[list[Batch]]] = {}
            tokens: dict[str, tuple[int, str, int]] = {}  # table -> (tokens in its last group, last stem, n)
            for b in self._pending:
                if b.attempts == 0 and not b.parts:
                    chain = groups.setdefault(b.table, [[]])
                    count, stem, k = tokens.get(b.table, (0, "", -2))
                    bstem, _, n = b.batch_id.rpartition("-")
                    bk = int(n) if bstem and n.isdigit() else -2
                    if not (bstem == stem and bk == k + 1 and bk >= 0):  # not a range's next id: a new token
                        count += 1
                    if count > MAX_MERGE_TOKENS:
                        chain.append([])
                        count = 1
                    tokens[b.table] = (count, bstem, bk)
                    chain[-1].append(b)
                else:
                    out.append(b)
            for table, chain in groups.items():
                for group in chain:
                    out.append(group[0] if len(group) == 1 else self._merged(table, group))
            self._pending = out
            return list(out)

    def _merged(self, table: str, group: list[Batch]) -> Batch:
        rows: list[tuple] = []
        chunks: list[Any] = []
        for g in group:
            if g.data is not None:
                chunks.append(g.data)
            else:
                rows.extend(g.rows or ())
                chunks.extend(g.chunks)
            g.data, g.rows, g.chunks = None, None, []  # the merged batch holds them now
        return Batch(table, rows=rows, chunks=chunks, parts=group, created_ms=min(g.created_ms for g in group))

    def materialize(self, batch: Batch) -> None:
        """Build ``batch.data`` from its rows; rows Arrow refuses are quarantined, the rest kept."""
        if batch.data is not None:
            return
        contract = self.store.contracts[batch.table]
        rows = batch.rows or []
        try:
            batch.data = rows_to_arrow(contract, rows, sort=self.sort, chunks=batch.chunks)
        except Exception:
            good, bad = split_bad_rows(contract, rows)
            if not bad:
                raise
            self._quarantine(batch, bad)
            batch.data = rows_to_arrow(contract, good, sort=self.sort, chunks=batch.chunks)
        batch.rows, batch.chunks = None, []

    def _quarantine(self, batch: Batch, bad: list[tuple[tuple, str]]) -> None:
        """Set rows that cannot be stored aside: logged, kept in memory and in a JSON-lines file."""
        entries = [{"table": batch.table, "batch_id": batch.batch_id, "error": err,
                    "row": [_jsonable(v) for v in row], "time_ms": int(time.time() * 1000)} for row, err in bad]
        self.quarantined = (self.quarantined + entries)[-QUARANTINE_KEEP:]
        self.stats.quarantined += len(entries)
        where = ""
        if self.quarantine_dir is not None:
            path = self.quarantine_dir / f"{batch.table}.jsonl"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="ascii") as f:
                    for e in entries:
                        f.write(json.dumps(e, ensure_ascii=True) + "\n")
                where = f"; they are kept in {path}"
            except OSError as e:
                where = f"; they could not be written to {path} ({e})"
        log.error("lakeml: %d row(s) for table %s could not be stored and were set aside (%s)%s. The rest of "
                  "the batch is committed. Fix the values at the logging call (strings must encode as UTF-8).",
                  len(entries), batch.table, entries[0]["error"], where or "; see Committer.quarantined")

    def _commit(self, batch: Batch, deadline_s: float) -> None:
        from lakeml.storage.retry import retry_commit
        from lakeml.storage.tables import append

        self.materialize(batch)
        start = time.monotonic()
        first_uncertain = batch.attempts > 0
        outcome: dict[str, Any] = {}

        props = {BATCH_ID: batch.batch_id, WRITER: self._writer}
        if batch.parts:
            props[BATCH_IDS] = encode_ids(batch.ids)

        def attempt(n: int) -> None:
            batch.attempts += 1
            uncertain = first_uncertain or n > 0
            child = self.appender
            if child is not None and child.usable():  # the same, done by the commit process (storage/commitproc.py)
                outcome["tbl"] = None
                outcome["duplicate"] = child.append(batch.table, batch.data, props, uncertain, batch.batch_id,
                                                    batch.created_ms)
                return
            tbl = outcome["tbl"] = self.store.table(batch.table, refresh=uncertain)
            if uncertain and batch_landed(tbl, batch):
                outcome["duplicate"] = True
                return
            append(tbl, batch.data, props)

        def on_retry(n: int, err: BaseException) -> None:
            self.stats.retries += 1

        ident = self.store.identifier(batch.table)
        try:
            retry_commit(attempt, what=f"the commit of {batch.num_rows} rows to {ident}", key=f"commit to {ident}",
                         deadline=deadline_s,
                         sleep=self._pause, on_retry=on_retry)
        except CommitError as e:
            err = e.__cause__ or e
            raise CommitError(
                f"could not commit {batch.num_rows} rows to {ident} within {deadline_s:.0f}s "
                f"({type(err).__name__}: {err}). The rows are kept and retried; check storage with "
                "'lakeml doctor'.") from err
        if outcome.get("duplicate"):
            self.stats.duplicates_avoided += 1
        self.stats.commits += 1
        self.stats.rows += batch.num_rows
        self.stats.seconds += time.monotonic() - start
        if self.spool is not None:
            for part in [batch, *batch.parts]:
                self.spool.mark_committed(part)
        if self.maintainer is not None and outcome.get("tbl") is not None:  # the commit process maintains its own
            self.maintainer.note_commit(batch.table, outcome["tbl"])

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

    def leave_to_helper(self) -> bool:
        """At exit (``exit_drain=background``): spool what is buffered and start the helper process that
        commits this spool once this process is gone (see :mod:`lakeml.storage.drain`). False, and
        nothing done, when there is nothing to leave or some rows are not in the spool (then commit inline).
        The spool lock stays held until the process exits, so the helper never races this one's commits."""
        if self.spool is None or self._pid != os.getpid():
            return False
        self._stop.set()  # no new tick starts
        try:
            self._take_new_batches()
        except Exception:  # pragma: no cover - fall back to committing inline
            return False
        with self._pending_lock:
            pending = list(self._pending)
        if not pending or not all(b.durable for b in pending) or self.spool.dir is None:
            return False
        from lakeml.storage.drain import spawn

        try:
            spawn(self.store.config, self.spool.root, self.spool.dir)
        except OSError as e:
            log.warning("could not start the lakeml drain helper (%s); committing at exit", e)
            return False
        _LIVE.discard(self)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread."""
        try:
            self.flush(timeout)
        finally:
            self._stop.set()
            self._wake.set()
            for t in (self._thread, self._spooler):
                if t is not None and t is not threading.current_thread():
                    t.join(timeout=5)
            if self.spool is not None and not self._pending:
                self.spool.close()
            _LIVE.discard(self)


def encode_ids(ids: list[str]) -> str:
    """Batch ids for a summary: runs of consecutive ``<stem>-<n>`` ids become ``<stem>-<a>..<b>``."""
    tokens: list[list[Any]] = []  # [stem, first, last] or [id]
    for bid in ids:
        stem, _, n = bid.rpartition("-")
        if stem and n.isdigit():
            k = int(n)
            if tokens and len(tokens[-1]) == 3 and tokens[-1][0] == stem and tokens[-1][2] == k - 1:
                tokens[-1][2] = k
                continue
            tokens.append([stem, k, k])
        else:
            tokens.append([bid])
    return ",".join(t[0] if len(t) == 1 else (f"{t[0]}-{t[1]}" if t[1] == t[2] else f"{t[0]}-{t[1]}..{t[2]}")
                    for t in tokens)


def ids_contain(encoded: str, batch_id: str) -> bool:
    """True if ``batch_id`` is one of the ids :func:`encode_ids` wrote into ``encoded``."""
    if not encoded:
        return False
    stem, _, n = batch_id.rpartition("-")
    k = int(n) if stem and n.isdigit() else None
    for tok in encoded.split(","):
        if tok == batch_id:
            return True
        if k is not None and ".." in tok:
            tstem, _, rng = tok.rpartition("-")
            a, _, b = rng.partition("..")
            if tstem == stem and a.isdigit() and b.isdigit() and int(a) <= k <= int(b):
                return True
    return False


def split_bad_rows(contract: Any, rows: list[tuple]) -> tuple[list[tuple], list[tuple[tuple, str]]]:
    """Split ``rows`` into those Arrow can store in the contract's schema and the others
    (each with the reason), column by column: only a column that fails is checked value by value."""
    import pyarrow as pa

    schema = contract.arrow_schema()
    bad: dict[int, str] = {}
    for j, r in enumerate(rows):
        if not isinstance(r, tuple) or len(r) != len(schema):
            bad[j] = f"row has {len(r) if isinstance(r, tuple) else type(r).__name__} values, expected {len(schema)}"
    for i, fld in enumerate(schema):
        try:
            pa.array([r[i] for j, r in enumerate(rows) if j not in bad], fld.type)
            continue
        except Exception:  # find the values at fault
            pass
        for j, r in enumerate(rows):
            if j in bad:
                continue
            try:
                pa.array([r[i]], fld.type)
            except Exception as e:
                bad[j] = f"column {fld.name}: {type(e).__name__}: {e}"
    good = [r for j, r in enumerate(rows) if j not in bad]
    return good, [(rows[j], why) for j, why in sorted(bad.items())]


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def is_committed(tbl: Any, batch_id: str, lookback: int | None = None) -> bool:
    """True if a snapshot of ``tbl`` carries ``batch_id`` (the newest ``lookback``, default all)."""
    snaps = tbl.metadata.snapshots if lookback is None else tbl.metadata.snapshots[-lookback:]
    for s in reversed(snaps):
        props = s.summary.additional_properties if s.summary is not None else {}
        if props.get(BATCH_ID) == batch_id or ids_contain(props.get(BATCH_IDS) or "", batch_id):
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
    if len(parts) > 1 and any(not p.schema.equals(parts[0].schema) for p in parts[1:]):
        # dictionary-encoded chunks (serving/predframe.py) beside plain ones: all in the contract's types
        parts = [p if p.schema.equals(schema) else p.cast(schema) for p in parts]
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


def live_committers() -> list["Committer"]:
    """The open committers of this process (read-your-writes commits those of the lake being read)."""
    return [c for c in list(_LIVE) if c._pid == os.getpid()]


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
            if c.exit_drain == "background" and c.leave_to_helper():
                continue
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
