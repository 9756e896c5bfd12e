"""Commit a process's spool after it exited, from a detached helper process (opt-in).

With ``LAKEML_EXIT_DRAIN=background`` (or the catalog property ``lakeml.exit-drain=background``),
a process whose pending rows are all in the fsynced spool does not commit them at exit: it starts
``python -m lakeml.storage.drain`` in a session of its own and exits at once, so a short script
never pays for importing the Iceberg write stack (about a second). The helper waits for the
process's spool lock (released by the kernel when it exits), then commits that spool and every
other dead one under the same root, exactly once and merged per table (:func:`recovery.recover`),
and runs the automatic maintenance that is due. One helper drains a root at a time
(``drain.lock``); a helper that finds another one running leaves the work to it, and the running
one looks again before it exits. Its log goes to ``<spool root>/drain.log``.

The default, ``inline``, commits at exit in the process itself: when ``python train.py`` returns,
its runs are in the tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig

EXIT_DRAIN = "lakeml.exit-drain"
ENV_EXIT_DRAIN = "LAKEML_EXIT_DRAIN"
MODES = ("inline", "background")
LOCK = "drain.lock"
LOG = "drain.log"


def exit_drain_mode(properties: dict[str, str]) -> str:
    """``inline`` (default) or ``background``: how a process commits its pending rows at exit."""
    raw = os.environ.get(ENV_EXIT_DRAIN) or properties.get(EXIT_DRAIN) or "inline"
    mode = str(raw).strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{ENV_EXIT_DRAIN}/{EXIT_DRAIN}={raw!r} is not a drain mode; use 'inline' (commit at "
                          "exit) or 'background' (a helper process commits the spool after exit)")
    return mode


def spawn(config: "LakeConfig", root: Path, owner_dir: Path) -> subprocess.Popen:
    """Start the helper for ``owner_dir`` (this process's spool); returns without waiting."""
    import lakeml

    job = json.dumps({"config": dataclasses.asdict(config), "root": str(root), "owner": str(owner_dir)})
    pkg_parent = str(Path(lakeml.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [pkg_parent, os.environ.get("PYTHONPATH")]))}
    env.pop(ENV_EXIT_DRAIN, None)  # the helper commits inline
    with open(root / LOG, "ab") as logf:  # the catalog properties go over a pipe, never on the command line
        proc = subprocess.Popen([sys.executable, "-m", "lakeml.storage.drain"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=logf, cwd=str(root), env=env,
                                start_new_session=True)
    proc.stdin.write(job.encode())
    proc.stdin.close()
    return proc


def main() -> int:
    import fcntl
    import logging

    from lakeml.storage.config import LakeConfig
    from lakeml.storage.maintenance import AutoMaintainer
    from lakeml.storage.recovery import recover
    from lakeml.storage.retry import with_storage_defaults
    from lakeml.storage.spool import DeadOwner, has_dead_owners
    from lakeml.storage.tables import TableStore

    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s drain[{os.getpid()}] %(levelname)s %(message)s")
    job = json.loads(sys.stdin.read())
    config = LakeConfig(**job["config"])
    root, owner_dir = Path(job["root"]), Path(job["owner"])
    first: list[Any] = []
    try:  # wait for the exiting process: the kernel releases its lock when it is gone; then it is ours
        fd = os.open(owner_dir / "lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = json.loads((owner_dir / "owner.json").read_text())
        first.append(DeadOwner(owner_dir, str(info["host"]), int(info["pid"]), int(info["started_ms"]), fd))
    except (OSError, ValueError, KeyError):
        pass  # recovered by someone else meanwhile
    lock = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    store = TableStore(with_storage_defaults(config))
    maintainer = AutoMaintainer.from_config(store, config.properties)
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another helper drains this root and looks again before it exits
            for owner in first:
                owner.release(remove=False)
            return 0
        failed = False
        while first or has_dead_owners(root):
            report = recover(store, root, owners=first, maintainer=maintainer)
            first = []
            if any(o.error for o in report.owners):
                failed = True
                break
        if maintainer is not None:
            maintainer.run_due()
        fcntl.flock(lock, fcntl.LOCK_UN)
        if failed or not has_dead_owners(root):
            return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
