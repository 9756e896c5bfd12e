"""The local spool: batches are made durable on this machine before they are committed.

Layout under the spool root (one root per lake, see :func:`spool_root`)::

    <root>/owner-<host>-<pid>-<id>/lock            flock()ed by the owning process while it lives
    <root>/owner-<host>-<pid>-<id>/owner.json      host, pid, start time
    <root>/owner-<host>-<pid>-<id>/heartbeat       touched on every spool write (last-seen time)
    <root>/owner-<host>-<pid>-<id>/<time>-<id>.lkspool     a log of batch records (this version)
    <root>/owner-<host>-<pid>-<id>/<time>-<table>-<batch id>.arrow   one batch (older versions; read)
    <root>/quarantine/<table>.jsonl                 rows the committer could not store (see committer.py)

A write appends the records of any number of batches (of any tables) to the owner's current log
file and calls ``fdatasync`` once, so ending a run costs one fsync whatever it logged. A record is
``MAGIC | header length | payload length | crc32 | header JSON | payload``; the payload is the raw
row tuples (``marshal``, no pyarrow needed) or an Arrow IPC stream. A record that is torn or fails
its checksum ends the log: it was never acknowledged. A log file is deleted once every batch in it
is committed. The owner holds an exclusive ``flock`` on its lock file for its whole life; the kernel
releases it when the process dies, however it dies (SIGKILL, OOM), so another process can tell a
dead owner's spool from a live one and recover it without ever stealing a live writer's batches.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import socket
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lakeml.errors import ConfigError, StorageError
from lakeml.storage.config import LAKEML_SPOOL_DIR
from lakeml.storage.localdirs import spool_root  # noqa: F401 - re-exported: the spool root of a lake

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

log = logging.getLogger("lakeml.spool")

SPOOL_DIR = LAKEML_SPOOL_DIR  # the catalog property; the folder is resolved by localdirs.spool_root
SPOOL_INTERVAL = "lakeml.spool-interval-ms"
_PREFIX = "owner-"
_SUFFIX = ".arrow"  # one batch per file (spools written by lakeml before the log format)
_LOG_SUFFIX = ".lkspool"
_MAGIC = b"LKS1"
_HEAD = struct.Struct("<4sIII")  # magic, header length, payload length, crc32 of header + payload
ROTATE_BYTES = 64 << 20  # a log file this large is closed; the next write starts a new one
QUARANTINE = "quarantine"

try:  # POSIX advisory locks; without them (Windows) owners are told apart by pid only
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


@dataclass
class Segment:
    """One spooled batch on disk: a record of a log file, or a whole ``.arrow`` file (older spools)."""

    path: Path
    table: str
    batch_id: str
    created_ms: int
    offset: int | None = None  # where the record's payload starts (None: the whole file is the batch)
    length: int = 0
    kind: str = "arrow"  # "arrow" (IPC) or "rows" (marshal of row tuples in contract column order)
    num_rows: int | None = None

    def payload(self) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self.offset or 0)
            return f.read(self.length)

    def rows(self) -> list[tuple] | None:
        """The raw row tuples of a ``rows`` record (None for an Arrow one)."""
        return marshal.loads(self.payload()) if self.kind == "rows" else None

    def read(self) -> "pa.Table":
        """The batch as an Arrow table (``rows`` records in their lakeml table's contract schema)."""
        import pyarrow as pa

        if self.offset is None:
            with pa.memory_map(str(self.path)) as src:
                return pa.ipc.open_file(src).read_all()
        if self.kind == "rows":
            from lakeml.storage.committer import rows_to_arrow
            from lakeml.storage.contract import load_contracts

            return rows_to_arrow(load_contracts()[self.table], self.rows(), sort=False)
        return pa.ipc.open_stream(pa.py_buffer(self.payload())).read_all()


LZ4_OVER = 256 * 1024  # bytes of Arrow data above which a spool record is lz4-compressed


def ipc_bytes(data: Any, compression: str | None = None) -> Any:
    """``data`` (an Arrow table) as an Arrow IPC stream, in a pyarrow Buffer."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression=compression) if compression else None
    with pa.ipc.new_stream(sink, data.schema, options=opts) as w:
        w.write_table(data)
    return sink.getvalue()


def encode_record(batch: Any) -> bytes:
    """One log record for ``batch`` (a committer Batch: table, batch_id, created_ms, and either
    ``payload`` (marshalled rows) or ``data`` (an Arrow table))."""
    header = {"table": batch.table, "batch_id": batch.batch_id, "rows": batch.num_rows,
              "created_ms": int(getattr(batch, "created_ms", time.time() * 1000))}
    payload = getattr(batch, "payload", None)
    if payload is not None:
        header["kind"] = "rows"
    else:
        # lz4 for large records (a prediction log's JSON features shrink ~4x: fewer bytes to copy and write)
        payload = ipc_bytes(batch.data, "lz4" if batch.data.nbytes > LZ4_OVER else None).to_pybytes()
        header["kind"] = "arrow"
    head = json.dumps(header, separators=(",", ":")).encode()
    crc = zlib.crc32(payload, zlib.crc32(head))
    return _HEAD.pack(_MAGIC, len(head), len(payload), crc) + head + payload


def read_log(path: Path) -> list[Segment]:
    """The complete records of a log file; a torn or corrupt record ends it (it was never acknowledged)."""
    out: list[Segment] = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, hlen, plen, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        end = start + hlen + plen
        if magic != _MAGIC or end > len(data) or zlib.crc32(data[start + hlen:end], zlib.crc32(data[start:start + hlen])) != crc:
            log.warning("spool log %s ends with an incomplete record at byte %d (a write that was never "
                        "acknowledged); the %d records before it are kept", path, pos, len(out))
            break
        h = json.loads(data[start:start + hlen])
        out.append(Segment(path, h["table"], h["batch_id"], int(h["created_ms"]), start + hlen, plen,
                           h.get("kind", "arrow"), h.get("rows")))
        pos = end
    return out


class Spool:
    """The spool of one writing process (created on first write).

    ``write_many(batches)`` returns once the batches are on disk (one ``fdatasync`` for all of them);
    ``mark_committed(batch)`` forgets a batch, and a log file whose batches are all committed is
    deleted. ``fsync=False`` skips the fsync calls (tests, or a tmpfs spool). ``interval``: how often
    the committer moves buffered rows here (``lakeml.spool-interval-ms``).
    """

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True, interval: float = 0.2):
        self.root = Path(root)
        self.fsync = fsync
        self.interval = interval  # seconds between spool writes (the durability window's main part)
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        self._pid: int | None = None
        self._mutex = threading.Lock()
        self._where: dict[str, Path] = {}  # batch id -> the log file holding it
        self._live: dict[Path, set[str]] = {}  # log file -> its batches not yet committed
        self._cur: tuple[Path, int] | None = None  # the log file being appended to, and its fd
        self._cur_bytes = 0
        self.writes = 0
        self.rows = 0
        self.bytes = 0
        self.last_write_s = 0.0  # wall time of the last spool write (fsync included)
        self.failures = 0

    @property
    def quarantine_dir(self) -> Path:
        return self.root / QUARANTINE

    # -- owner ---------------------------------------------------------------------------------
    def _ensure_owner(self) -> Path:
        pid = os.getpid()
        if self.dir is not None and self._pid == pid:
            return self.dir
        # first write, or a forked child: a child must not write into its parent's spool
        self._pid = pid
        self._where, self._live, self._cur, self._cur_bytes = {}, {}, None, 0
        self.dir, self._lock_fd = create_owner(self.root)
        return self.dir

    # -- write path ----------------------------------------------------------------------------
    def write(self, batch: Any) -> None:
        """Make ``batch`` durable on local disk (see :meth:`write_many`)."""
        self.write_many([batch])

    def write_many(self, batches: list[Any]) -> None:
        """Make ``batches`` (committer Batches: table, batch_id, data or payload) durable on local
        disk: their records are appended to the current log file, then one ``fdatasync``."""
        if not batches:
            return
        start = time.perf_counter()
        blob = b"".join(encode_record(b) for b in batches)
        with self._mutex:
            try:
                d = self._ensure_owner()
            except (OSError, ConfigError) as e:
                self.failures += 1
                raise StorageError(f"cannot use the local spool under {self.root}: {e}. Set '{SPOOL_DIR}' "
                                   "to a writable folder") from e
            try:
                path, fd = self._log_file(d)
                pos = os.lseek(fd, 0, os.SEEK_END)
                try:
                    _write_all(fd, blob)
                    if self.fsync:
                        os.fdatasync(fd)
                except OSError:
                    os.ftruncate(fd, pos)  # no half record left behind (best effort)
                    raise
                _touch(d / "heartbeat")
            except OSError as e:
                self.failures += 1
                self._close_current()
                raise StorageError(f"could not write the local spool {d}: {e}. Free disk space or set "
                                   f"'{SPOOL_DIR}' to another folder ('off' disables the spool)") from e
            live = self._live.setdefault(path, set())
            for b in batches:
                self._where[b.batch_id] = path
                live.add(b.batch_id)
                self.rows += b.num_rows
            self._cur_bytes = pos + len(blob)
            if self._cur_bytes >= ROTATE_BYTES:
                self._close_current()
            self.writes += 1
            self.bytes += len(blob)
            self.last_write_s = time.perf_counter() - start

    def _log_file(self, d: Path) -> tuple[Path, int]:
        if self._cur is None:
            path = d / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{_LOG_SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if self.fsync:
                _fsync_dir(d)  # the new name is durable before any record in it is acknowledged
            self._cur, self._cur_bytes = (path, fd), 0
        return self._cur

    def _close_current(self) -> None:
        if self._cur is not None:
            path, fd = self._cur
            self._cur = None
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
            if not self._live.get(path):
                self._drop(path)

    def _drop(self, path: Path) -> None:
        self._live.pop(path, None)
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def heartbeat(self) -> None:
        """Record that the owner is alive (its last-seen time, used when it is found dead)."""
        if self.dir is not None and self._pid == os.getpid():
            try:
                _touch(self.dir / "heartbeat")
            except OSError:
                pass

    def mark_committed(self, batch: Any) -> None:
        """The batch is in Iceberg: forget it, and delete its log file once nothing in it is pending."""
        with self._mutex:
            path = self._where.pop(batch.batch_id, None)
            if path is None:
                old = getattr(batch, "spool_path", None)  # a one-batch file of an older spool
                if old is not None and str(old).endswith(_SUFFIX):
                    Path(old).unlink(missing_ok=True)
                return
            live = self._live.get(path)
            if live is not None:
                live.discard(batch.batch_id)
                if not live:  # all committed (the current file too: the next write starts a new one)
                    if self._cur is not None and self._cur[0] == path:
                        self._close_current()
                    else:
                        self._drop(path)

    def segments(self) -> list[Segment]:
        """This process's batches not yet committed."""
        if self.dir is None:
            return []
        with self._mutex:
            pending = set(self._where)
        return [s for s in list_segments(self.dir) if s.batch_id in pending or s.offset is None]

    def close(self) -> None:
        """Release the spool; its folder is removed when nothing is left in it."""
        with self._mutex:
            if self.dir is None or self._pid != os.getpid():
                return
            self._close_current()
            if not self._where:
                for p in list(self._live):
                    self._drop(p)
            if not any(s.batch_id in self._where or s.offset is None for s in list_segments(self.dir)):
                remove_owner(self.dir)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self.dir = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# -- owners -------------------------------------------------------------------------------------
def create_owner(root: Path) -> tuple[Path, int]:
    """A new owner folder, created complete (lock + owner.json) and then renamed into place; returns it
    and the descriptor of its lock file, ``flock``ed before the rename, so that no other process can
    ever see the folder unlocked (and take it for a dead owner's) while this one lives."""
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started_ms": int(time.time() * 1000)}
    name = f"{_PREFIX}{info['host']}-{info['pid']}-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        fd = None
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f".tmp-{name}"
            tmp.mkdir()
            (tmp / "lock").touch()
            fd = _lock(tmp)
            (tmp / "owner.json").write_text(json.dumps(info))
            _touch(tmp / "heartbeat")
            os.replace(tmp, root / name)
            return root / name, fd
        except FileNotFoundError:  # the root was removed by a concurrent cleanup: try again
            if fd is not None:
                os.close(fd)
            continue
        except OSError as e:
            if fd is not None:
                os.close(fd)
            raise ConfigError(f"cannot create the lakeml spool under {root}: {e}. Set '{SPOOL_DIR}' to a "
                              "writable folder, or 'off' to disable crash-safe logging") from e
    raise ConfigError(f"cannot create the lakeml spool under {root}")


def _lock(owner: Path) -> int:
    fd = os.open(owner / "lock", os.O_RDWR)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@dataclass
class DeadOwner:
    """The spool of a process that died; we hold its lock until :meth:`release`."""

    dir: Path
    host: str
    pid: int
    started_ms: int
    fd: int

    @property
    def last_seen_ms(self) -> int:
        """When the owner was last seen alive (its last spool write)."""
        try:
            return int((self.dir / "heartbeat").stat().st_mtime * 1000)
        except OSError:
            return self.started_ms

    def segments(self) -> list[Segment]:
        return list_segments(self.dir)

    def release(self, *, remove: bool) -> None:
        if remove:
            remove_owner(self.dir)
        os.close(self.fd)


def claim_dead_owners(root: Path | None) -> Iterator[DeadOwner]:
    """Yield the spools under ``root`` whose owner is dead, each locked by us while we hold it.

    A folder whose lock is held belongs to a live process (or to another process
    recovering it) and is skipped.
    """
    if root is None or not root.is_dir():
        return
    for d in sorted(root.iterdir()):
        if not d.name.startswith(_PREFIX) or not d.is_dir():
            if d.name.startswith(f".tmp-{_PREFIX}") and _age_s(d) > 3600:  # a crash while creating one
                remove_owner(d)
            continue
        try:
            fd = os.open(d / "lock", os.O_RDWR)
        except FileNotFoundError:
            continue
        if not _try_lock(fd, d):
            os.close(fd)
            continue
        try:
            info = json.loads((d / "owner.json").read_text())
        except (OSError, ValueError):
            info = {}
        yield DeadOwner(d, str(info.get("host", "?")), int(info.get("pid", -1)),
                        int(info.get("started_ms", 0)), fd)


def has_dead_owners(root: Path | None) -> bool:
    """Cheap check (no locks kept): is there a spool of a dead process to recover?"""
    for owner in claim_dead_owners(root):
        owner.release(remove=False)
        return True
    return False


def _try_lock(fd: int, d: Path) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    try:  # pragma: no cover - no flock: the pid decides
        info = json.loads((d / "owner.json").read_text())
        os.kill(int(info["pid"]), 0)
        return False
    except (OSError, ValueError, KeyError):
        return True


def list_segments(d: Path) -> list[Segment]:
    """Every batch spooled in owner folder ``d``: the records of its log files, then older ``.arrow`` files."""
    out: list[Segment] = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if name.startswith("."):
            continue
        if name.endswith(_LOG_SUFFIX):
            out.extend(read_log(d / name))
            continue
        if not name.endswith(_SUFFIX):
            continue
        stem = name[: -len(_SUFFIX)]
        ts, _, rest = stem.partition("-")
        table, _, batch_id = rest.rpartition("-")
        try:
            created_ms = int(ts) // 1_000_000
        except ValueError:
            continue
        out.append(Segment(d / name, table, batch_id, created_ms))
    return out


def remove_owner(d: Path) -> None:
    for p in sorted(d.iterdir()) if d.is_dir() else []:
        try:
            p.unlink()
        except IsADirectoryError:  # pragma: no cover - nothing nests here
            pass
        except FileNotFoundError:
            pass
    try:
        d.rmdir()
        d.parent.rmdir()  # the root too, when it is empty now
    except OSError:
        pass


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _touch(p: Path) -> None:
    try:
        os.utime(p)
    except FileNotFoundError:
        p.touch()


def _age_s(p: Path) -> float:
    try:
        return time.time() - p.stat().st_mtime
    except OSError:
        return 0.0
