"""Commit a process's spool after it exited, from a detached helper process (the default).

A process whose pending rows are all in the fsynced spool does not commit them at exit: it starts
``python -m lakeml.storage.drain`` in a session of its own and exits at once, so a short script
never pays for importing the Iceberg write stack (about a second). The helper waits for the
process's spool lock (released by the kernel when it exits), then, holding ``drain.lock`` (one
helper drains a root at a time; the others queue behind it), commits that spool and every other
dead one under the same root, exactly once and merged per table (:func:`recovery.recover`), and
runs the automatic maintenance that is due. Its log goes to ``<spool root>/drain.log``.

Readers see the run all the same: before its first read (and every later one), a :class:`Lake`
calls :func:`wait_for_drains`, which returns at once when no spool under its root belongs to a
dead process and nobody is committing one, and otherwise waits (bounded by the commit deadline)
for the helper, or recovers the dead spools itself. Whoever commits dead spools (a helper from the
moment its writer hands over, :func:`recovery.recover`) holds a shared ``flock`` on
``<spool root>/drain.busy``; the writer takes it before it exits and passes it to its helper, so
there is no moment between the writer's exit and the helper's start when a reader would find
nothing to wait for. So ``python train.py && lakeml runs list`` lists the run.

``LAKEML_EXIT_DRAIN=inline`` (or the catalog property ``lakeml.exit-drain=inline``) commits at
exit in the process itself, as before; so do processes without a spool (``lakeml.spool-dir=off``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lakeml.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig

try:  # POSIX advisory locks; without them (Windows) there is nothing to wait on
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("lakeml.drain")

EXIT_DRAIN = "lakeml.exit-drain"
ENV_EXIT_DRAIN = "LAKEML_EXIT_DRAIN"
MODES = ("inline", "background")
DEFAULT_MODE = "background"
LOCK = "drain.lock"
BUSY = "drain.busy"
LOG = "drain.log"
POLL_S = 0.02


def exit_drain_mode(properties: dict[str, str]) -> str:
    """``background`` (default) or ``inline``: how a process commits its pending rows at exit."""
    raw = os.environ.get(ENV_EXIT_DRAIN) or properties.get(EXIT_DRAIN) or DEFAULT_MODE
    mode = str(raw).strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{ENV_EXIT_DRAIN}/{EXIT_DRAIN}={raw!r} is not a drain mode; use 'inline' (commit at "
                          "exit) or 'background' (the default: a helper process commits the spool after exit)")
    return mode


def hold_busy(root: Path) -> int | None:
    """A descriptor holding a shared lock on ``<root>/drain.busy`` (close it to release): while any
    is held, :func:`wait_for_drains` waits. None without flock or when the root is not there."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(Path(root) / BUSY, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:  # pragma: no cover
        os.close(fd)
        return None
    return fd


def drains_running(root: Path) -> bool:
    """Is a process committing dead spools under ``root``, or a helper about to? (A non-blocking try.)"""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(Path(root) / BUSY, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # pragma: no cover
        return False
    finally:
        os.close(fd)  # also releases our lock
    return False


def wait_for_drains(root: str | os.PathLike | None, timeout: float = 120.0, *,
                    recover: Callable[[], bool] | None = None) -> bool:
    """Wait until every lakeml process on this machine that exited has its rows in the tables.

    ``root``: the spool root of the lake (:func:`lakeml.storage.localdirs.spool_root` of its config;
    for the embedded catalog ``<warehouse>/.lakeml-spool/<namespace>``). Returns True when no spool
    under it belongs to a dead process and no helper (or recovery) is committing one; False when
    ``timeout`` seconds passed first, or dead spools are left that nobody commits. ``recover``: called
    (at most a few times) to commit such spools in this process; returns False if that failed.
    Cheap when there is nothing to wait for: a directory listing and a few non-blocking ``flock`` tries.
    A :class:`~lakeml.Lake` does this before every read; scripts that read the tables with other
    engines right after a lakeml process exited can call it themselves.
    """
    from lakeml.storage.spool import has_dead_owners

    if root is None:
        return True
    root = Path(root)
    end = time.monotonic() + (timeout if timeout is not None else 120.0)
    attempts = 0
    while True:
        if not root.is_dir():
            return True
        # dead spools first, then the busy lock: a recovery holds it from before it claims a spool
        # until that spool is committed, so a spool not seen dead here is either live or done by then
        dead = has_dead_owners(root)
        busy = drains_running(root)
        if not dead and not busy:
            return True
        if dead and not busy:
            if recover is None or attempts >= 3:
                return False  # nobody commits them (a crashed process: `lakeml recover`, or the next connect)
            attempts += 1
            if not recover():
                return False
            continue
        if time.monotonic() >= end:
            return False
        time.sleep(POLL_S)


def spawn(config: "LakeConfig", root: Path, owner_dir: Path) -> subprocess.Popen:
    """Start the helper for ``owner_dir`` (this process's spool); returns without waiting.

    It inherits a shared lock on ``drain.busy`` taken here, so readers wait for it from now on."""
    import lakeml

    busy = hold_busy(root)
    job = json.dumps({"config": dataclasses.asdict(config), "root": str(root), "owner": str(owner_dir),
                      "busy_fd": busy})
    pkg_parent = str(Path(lakeml.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [pkg_parent, os.environ.get("PYTHONPATH")]))}
    env[ENV_EXIT_DRAIN] = "inline"  # the helper commits itself
    try:
        with open(root / LOG, "ab") as logf:  # the catalog properties go over a pipe, never on the command line
            proc = subprocess.Popen([sys.executable, "-m", "lakeml.storage.drain"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=logf, cwd=str(root), env=env,
                                    start_new_session=True, pass_fds=(busy,) if busy is not None else ())
    finally:
        if busy is not None:
            os.close(busy)  # the helper's copy keeps the lock
    proc.stdin.write(job.encode())
    proc.stdin.close()
    return proc


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s drain[{os.getpid()}] %(levelname)s %(message)s")
    job = json.loads(sys.stdin.read())
    root, owner_dir = Path(job["root"]), Path(job["owner"])
    try:  # wait for the exiting process: the kernel releases its lock when it is gone
        fd = os.open(owner_dir / "lock", os.O_RDWR)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.close(fd)  # whoever holds drain.lock commits it
    except OSError:
        pass  # recovered by someone else meanwhile
    from lakeml.storage.spool import has_dead_owners

    lock = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)  # queue behind a helper draining this root
    if not has_dead_owners(root):
        return 0  # the helper before us committed ours too
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.maintenance import AutoMaintainer
    from lakeml.storage.recovery import recover
    from lakeml.storage.retry import with_storage_defaults
    from lakeml.storage.tables import TableStore

    config = LakeConfig(**job["config"])
    store = TableStore(with_storage_defaults(config))
    maintainer = AutoMaintainer.from_config(store, config.properties)
    failed = False
    for _ in range(100):
        if not has_dead_owners(root):
            break
        report = recover(store, root, maintainer=maintainer)
        if any(o.error for o in report.owners):
            failed = True
            break
    if isinstance(job.get("busy_fd"), int):
        try:
            os.close(job["busy_fd"])  # committed: readers need not wait for the maintenance below
        except OSError:
            pass
    if maintainer is not None:
        maintainer.run_due()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
