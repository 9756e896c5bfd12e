"""The remote client's write path: buffered, journaled on local disk, sent in order by a thread.

Logging calls append to an in-memory queue (no I/O). Every ``interval`` a daemon thread turns the
queue into requests (consecutive metric points of any runs become one Arrow IPC stream for
``POST /api/v1/batch``; run creation, params, tags and run ends are JSON requests), writes each one to
the journal (one file per request, fsynced, named in sending order) and sends them in order with an
idempotency key (``X-Lakeml-Batch-Id``). A file is deleted once the server acknowledged it (the
server acknowledges only durable rows). When the server cannot be reached the thread backs off
(exponentially, up to :data:`MAX_BACKOFF` seconds) and keeps the journal; the run goes on.

The journal lives under ``<cache dir>/remote/<hash of the server URL>/client-<pid>-<id>/``; the client
holds an ``flock`` on its folder while it lives. A new client of the same server adopts the folders of
dead clients (their lock is free) and sends their requests first, marked as retries
(``X-Lakeml-Retry: 1``), so the server drops the ones it had already accepted: nothing is lost
when a client process crashes, and nothing is stored twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeml.errors import StorageError
from lakeml.remote.http import ARROW, AccessDenied, Http, Unreachable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no adoption of dead clients' journals
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("lakeml.remote")

INTERVAL = 0.2  # seconds between sends
MAX_BACKOFF = 2.0
MAX_POINTS = 50_000  # metric points per request
JOURNAL_ENV = "LAKEML_REMOTE_JOURNAL"  # folder of the journals (default: <cache dir>/remote); "off": memory only


@dataclass
class Entry:
    """One request on its way: in the journal file ``path`` (None: memory only)."""

    seq: str
    batch_id: str
    method: str
    path: str
    content_type: str
    body: bytes
    attempts: int = 0
    file: Path | None = None

    def header(self) -> bytes:
        return json.dumps({"batch_id": self.batch_id, "method": self.method, "path": self.path,
                           "content_type": self.content_type}).encode() + b"\n"

    @classmethod
    def load(cls, file: Path) -> "Entry | None":
        try:
            raw = file.read_bytes()
            head, _, body = raw.partition(b"\n")
            h = json.loads(head)
            return cls(file.name.split("-")[0], h["batch_id"], h["method"], h["path"], h["content_type"], body,
                       attempts=1, file=file)  # maybe sent before: a retry
        except (OSError, ValueError, KeyError) as e:
            log.warning("lakeml: unreadable journal entry %s skipped (%s)", file, e)
            return None


def journal_root() -> Path | None:
    explicit = os.environ.get(JOURNAL_ENV)
    if explicit and explicit.strip().lower() in ("off", "none", "0", "false"):
        return None
    if explicit:
        return Path(explicit).expanduser()
    from lakeml.storage.localdirs import cache_dir

    return cache_dir() / "remote"


class Sender:
    """Queue, journal and send the writes of one remote client (see the module docstring)."""

    def __init__(self, http: Http, *, interval: float = INTERVAL, root: Path | None | str = "default"):
        self.http = http
        self.interval = interval
        self._queue: list[Any] = []  # metric point tuples (run_id, key, value, step, ts_ms) and request tuples
        self._lock = threading.Lock()
        self._entries: list[Entry] = []  # journaled, not yet acknowledged, in sending order
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._seq = 0
        self._taking = 0
        self.errors: list[Exception] = []  # requests the server refused (4xx): reported by flush()
        self.last_error: Exception | None = None  # the last reason a send failed (server unreachable...)
        self.sent = 0
        self.backoff = 0.0
        self._thread: threading.Thread | None = None
        base = journal_root() if root == "default" else (Path(root) if root is not None else None)
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        if base is not None:
            server = hashlib.sha256(http.url.encode()).hexdigest()[:16]
            self.server_dir = base / server
            self.dir = self.server_dir / f"client-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._adopt()

    # -- producer side ------------------------------------------------------------------------
    def point(self, row: tuple) -> None:
        """One metric point ``(run_id, key, value, step, timestamp_ms)``."""
        with self._lock:
            self._queue.append(row)
            n = len(self._queue)
        if n >= MAX_POINTS:
            self._wake.set()
        self._ensure_thread()

    def points(self, rows: list[tuple]) -> None:
        with self._lock:
            self._queue.extend(rows)
        self._ensure_thread()

    def request(self, method: str, path: str, body: Any) -> None:
        """A JSON write request, sent after everything queued before it."""
        with self._lock:
            self._queue.append(("__request__", method, path, json.dumps(body).encode()))
        self._ensure_thread()
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._entries) + self._taking

    # -- the thread ---------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._send_lock:
                if self._thread is None or not self._thread.is_alive():
                    import pyarrow  # noqa: F401 - here, not first in the thread (see Committer._ensure_thread)

                    self._stop.clear()
                    self._thread = threading.Thread(target=self._loop, name="lakeml-remote-sender", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.backoff or self.interval)
            self._wake.clear()
            try:
                self.run_once()
            except Exception as e:  # pragma: no cover - never let the thread die
                self.last_error = e
                log.exception("lakeml remote sender failed")

    def run_once(self) -> bool:
        """Journal what is queued and send everything journaled, in order; True when all was acknowledged."""
        with self._send_lock:
            try:
                self._journal(self._take())
            finally:
                self._taking = 0
            ok = self._send_all()
        with self._idle:
            self._idle.notify_all()
        return ok

    def _take(self) -> list[Entry]:
        with self._lock:
            queue, self._queue = self._queue, []
            self._taking = len(queue)  # still pending until journaled (see pending())
        out: list[Entry] = []
        points: list[tuple] = []
        for item in queue:
            if len(item) == 4 and item[0] == "__request__":
                if points:
                    out.extend(self._points_entries(points))
                    points = []
                out.append(self._entry(item[1], item[2], "application/json", item[3]))
            else:
                points.append(item)
        if points:
            out.extend(self._points_entries(points))
        return out

    def _points_entries(self, points: list[tuple]) -> list[Entry]:
        import pyarrow as pa

        out = []
        for i in range(0, len(points), MAX_POINTS):
            chunk = points[i:i + MAX_POINTS]
            table = pa.table({"run_id": pa.array([p[0] for p in chunk], pa.string()),
                              "key": pa.array([p[1] for p in chunk], pa.string()),
                              "value": pa.array([p[2] for p in chunk], pa.float64()),
                              "step": pa.array([p[3] for p in chunk], pa.int64()),
                              "timestamp": pa.array([p[4] for p in chunk], pa.int64())})
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table)
            out.append(self._entry("POST", "/api/v1/batch", ARROW, sink.getvalue().to_pybytes()))
        return out

    def _entry(self, method: str, path: str, content_type: str, body: bytes) -> Entry:
        self._seq += 1
        seq = f"{time.time_ns():020d}{self._seq:08d}"
        return Entry(seq, uuid.uuid4().hex, method, path, content_type, body)

    def _journal(self, entries: list[Entry]) -> None:
        if not entries:
            return
        if self.dir is not None:
            for e in entries:
                e.file = self.dir / f"{e.seq}-{e.batch_id}.req"
                tmp = e.file.with_suffix(".tmp")
                try:
                    with open(tmp, "wb") as f:
                        f.write(e.header())
                        f.write(e.body)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, e.file)
                except OSError as err:  # kept in memory: sent all the same, lost only if this process dies
                    log.warning("lakeml: could not journal a request under %s (%s)", self.dir, err)
                    e.file = None
            try:
                dfd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:  # pragma: no cover
                pass
        self._entries.extend(entries)

    def _send_all(self) -> bool:
        while self._entries:
            e = self._entries[0]
            headers = {"X-Lakeml-Batch-Id": e.batch_id, "X-Lakeml-Batch-Time": str(int(e.seq[:20]) // 1_000_000)}
            if e.attempts:
                headers["X-Lakeml-Retry"] = "1"
            e.attempts += 1
            try:
                self.http.request(e.method, e.path, body=e.body, content_type=e.content_type, headers=headers)
            except (Unreachable, AccessDenied) as err:
                self.last_error = err
                self.backoff = min(MAX_BACKOFF, max(0.05, self.backoff * 2 or 0.05))
                return False
            except Exception as err:  # refused (4xx): it will never pass; keep it aside and go on
                self.errors.append(err)
                log.error("lakeml: the server refused %s %s (%s); the request is kept in %s", e.method, e.path, err,
                          self.server_dir / "rejected" if self.dir is not None else "memory")
                self._set_aside(e)
            else:
                self.sent += 1
                if e.file is not None:
                    try:
                        e.file.unlink()
                    except FileNotFoundError:
                        pass
            self._entries.pop(0)
            self.backoff = 0.0
            self.last_error = None
        return True

    def _set_aside(self, e: Entry) -> None:
        if e.file is None:
            return
        rejected = self.server_dir / "rejected"
        try:
            rejected.mkdir(exist_ok=True)
            os.replace(e.file, rejected / e.file.name)
        except OSError:  # pragma: no cover
            pass

    def _adopt(self) -> None:
        """Take over the journals of dead clients of this server (their flock is free)."""
        if fcntl is None:
            return
        for d in sorted(self.server_dir.glob("client-*")):
            if d == self.dir or not d.is_dir():
                continue
            try:
                fd = os.open(d / "lock", os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # alive
                files = sorted(d.glob("*.req"))
                for f in files:
                    target = self.dir / f.name
                    os.replace(f, target)
                    entry = Entry.load(target)
                    if entry is not None:
                        self._entries.append(entry)
                shutil.rmtree(d, ignore_errors=True)
                if files:
                    log.warning("lakeml: re-sending %d request(s) that client %s left unsent", len(files), d.name)
            finally:
                os.close(fd)
        self._entries.sort(key=lambda e: e.seq)
        if self._entries:
            self._ensure_thread()
            self._wake.set()

    # -- waiting ------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Return once the server acknowledged everything queued so far. Raises
        :class:`~lakeml.errors.StorageError` when it could not be reached within ``timeout`` seconds
        (default 120; the requests stay journaled and keep being retried), and the first error of a
        request the server refused since the last flush."""
        deadline = time.monotonic() + (120.0 if timeout is None else timeout)
        if self.pending():
            self._ensure_thread()
        while self.pending():
            self.backoff = min(self.backoff, 0.5)
            self._wake.set()
            with self._idle:
                self._idle.wait(0.05)
            if time.monotonic() > deadline and self.pending():
                raise StorageError(
                    f"lakeml server {self.http.url} has not acknowledged {self.pending()} pending request(s) "
                    f"({self.last_error}); they are kept{' in ' + str(self.dir) if self.dir else ' in memory'} and "
                    "re-sent until it answers (also by the next client of this server if this process exits)")
        if self.errors:
            errors, self.errors = self.errors, []
            raise errors[0]

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``), stop the thread; the journal stays if something is left."""
        try:
            self.flush(timeout)
        finally:
            self._stop.set()
            self._wake.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(5)
            if self.dir is not None and not self._entries and not self._queue:
                shutil.rmtree(self.dir, ignore_errors=True)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
