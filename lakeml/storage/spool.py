"""The local spool: batches are made durable on this machine before they are committed.

Layout under the spool root (one root per lake, see :func:`spool_root`)::

    <root>/owner-<host>-<pid>-<id>/lock            flock()ed by the owning process while it lives
    <root>/owner-<host>-<pid>-<id>/owner.json      host, pid, start time
    <root>/owner-<host>-<pid>-<id>/heartbeat       touched on every spool write (last-seen time)
    <root>/owner-<host>-<pid>-<id>/<ns>-<table>-<batch id>.arrow

Each batch is one Arrow IPC file, written under a temporary name, fsync()ed and renamed
(then the folder is fsync()ed), so a segment is either complete or absent. It is deleted
once its batch is committed. The owner holds an exclusive ``flock`` on its lock file for
its whole life; the kernel releases it when the process dies, however it dies (SIGKILL,
OOM), so another process can tell a dead owner's spool from a live one and recover it
without ever stealing a live writer's batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lakeml.errors import ConfigError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lakeml.storage.config import LakeConfig

log = logging.getLogger("lakeml.spool")

SPOOL_DIR = "lakeml.spool-dir"
SPOOL_INTERVAL = "lakeml.spool-interval-ms"
OFF = {"off", "none", "false", "0", "disabled"}
_PREFIX = "owner-"
_SUFFIX = ".arrow"

try:  # POSIX advisory locks; without them (Windows) owners are told apart by pid only
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def spool_root(config: "LakeConfig") -> Path | None:
    """Where this lake's spool lives, or None when the spool is switched off.

    ``lakeml.spool-dir`` in the catalog properties wins (``off`` disables the spool);
    the embedded default keeps it inside its warehouse folder; any other catalog gets
    ``~/.cache/lakeml/spool/<hash of catalog and namespace>``.
    """
    explicit = config.properties.get(SPOOL_DIR) or os.environ.get("LAKEML_SPOOL_DIR")
    if explicit and explicit.strip().lower() in OFF:
        return None
    if explicit:
        return Path(explicit).expanduser().resolve() / _catalog_hash(config)
    if config.embedded and config.warehouse_dir:
        return Path(config.warehouse_dir) / ".lakeml-spool" / config.namespace
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "lakeml" / "spool" / _catalog_hash(config)


def _catalog_hash(config: "LakeConfig") -> str:
    ident = "|".join([config.catalog_name, config.properties.get("uri", ""),
                      config.properties.get("warehouse", ""), config.namespace])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@dataclass
class Segment:
    """One spooled batch on disk."""

    path: Path
    table: str
    batch_id: str
    created_ms: int

    def read(self) -> "pa.Table":
        import pyarrow as pa

        with pa.memory_map(str(self.path)) as src:
            return pa.ipc.open_file(src).read_all()


class Spool:
    """The spool of one writing process (created on first write).

    ``write(batch)`` returns once the batch is on disk (fsync); ``mark_committed(batch)``
    deletes it. ``fsync=False`` skips the fsync calls (tests, or a tmpfs spool). ``interval``:
    how often the committer moves buffered rows here (``lakeml.spool-interval-ms``).
    """

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True, interval: float = 0.2):
        self.root = Path(root)
        self.fsync = fsync
        self.interval = interval  # seconds between spool writes (the durability window's main part)
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        self._pid: int | None = None
        self._mutex = threading.Lock()
        self._paths: dict[str, Path] = {}
        self.writes = 0
        self.rows = 0
        self.bytes = 0
        self.last_write_s = 0.0  # wall time of the last spool write (fsync included)
        self.failures = 0

    # -- owner ---------------------------------------------------------------------------------
    def _ensure_owner(self) -> Path:
        pid = os.getpid()
        if self.dir is not None and self._pid == pid:
            return self.dir
        # first write, or a forked child: a child must not write into its parent's spool
        self._pid = pid
        self._paths = {}
        self.dir = create_owner(self.root)
        self._lock_fd = _lock(self.dir)
        return self.dir

    @property
    def owner_id(self) -> str | None:
        return self.dir.name if self.dir is not None else None

    # -- write path ----------------------------------------------------------------------------
    def write(self, batch: Any) -> None:
        """Make ``batch`` (a committer Batch: table, data, batch_id) durable on local disk."""
        import pyarrow as pa

        start = time.perf_counter()
        with self._mutex:
            try:
                d = self._ensure_owner()
            except (OSError, ConfigError) as e:
                self.failures += 1
                raise StorageError(f"cannot use the local spool under {self.root}: {e}") from e
            name = f"{time.time_ns():020d}-{batch.table}-{batch.batch_id}{_SUFFIX}"
            tmp = d / f".tmp-{name}"
            meta = {b"lakeml.table": batch.table.encode(), b"lakeml.batch-id": batch.batch_id.encode(),
                    b"lakeml.created-ms": str(getattr(batch, "created_ms", int(time.time() * 1000))).encode()}
            data = batch.data.replace_schema_metadata({**(batch.data.schema.metadata or {}), **meta})
            try:
                with open(tmp, "wb") as raw:
                    with pa.ipc.new_file(raw, data.schema) as w:
                        w.write_table(data)
                    raw.flush()
                    if self.fsync:
                        os.fsync(raw.fileno())
                final = d / name
                os.replace(tmp, final)
                if self.fsync:
                    _fsync_dir(d)
                _touch(d / "heartbeat")
            except OSError as e:
                self.failures += 1
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise StorageError(f"could not write the local spool {d}: {e}. Free disk space or set "
                                   f"'{SPOOL_DIR}' to another folder ('off' disables the spool)") from e
            self._paths[batch.batch_id] = final
            self.writes += 1
            self.rows += data.num_rows
            self.bytes += final.stat().st_size
            self.last_write_s = time.perf_counter() - start

    def heartbeat(self) -> None:
        """Record that the owner is alive (its last-seen time, used when it is found dead)."""
        if self.dir is not None and self._pid == os.getpid():
            try:
                _touch(self.dir / "heartbeat")
            except OSError:
                pass

    def mark_committed(self, batch: Any) -> None:
        """The batch is in Iceberg: drop its segment."""
        path = self._paths.pop(batch.batch_id, None) or getattr(batch, "spool_path", None)
        if path is not None:
            try:
                Path(path).unlink()
            except FileNotFoundError:
                pass

    def segments(self) -> list[Segment]:
        """This process's segments not yet committed."""
        return list_segments(self.dir) if self.dir is not None else []

    def close(self) -> None:
        """Release the spool; its folder is removed when nothing is left in it."""
        with self._mutex:
            if self.dir is None or self._pid != os.getpid():
                return
            if not list_segments(self.dir):
                remove_owner(self.dir)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self.dir = None


# -- owners -------------------------------------------------------------------------------------
def create_owner(root: Path) -> Path:
    """A new owner folder, created complete (lock + owner.json) and then renamed into place."""
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started_ms": int(time.time() * 1000)}
    name = f"{_PREFIX}{info['host']}-{info['pid']}-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f".tmp-{name}"
            tmp.mkdir()
            (tmp / "lock").touch()
            (tmp / "owner.json").write_text(json.dumps(info))
            _touch(tmp / "heartbeat")
            os.replace(tmp, root / name)
            return root / name
        except FileNotFoundError:  # the root was removed by a concurrent cleanup: try again
            continue
        except OSError as e:
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
    out = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if not name.endswith(_SUFFIX) or name.startswith("."):
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
