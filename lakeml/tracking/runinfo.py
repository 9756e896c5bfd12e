"""Facts about the process that starts a run: user, host, entry point, git commit."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from pathlib import Path


def current_user() -> str | None:
    """The acting user (a server request's token name, :mod:`lakeml.identity`), else the OS user."""
    from lakeml.identity import acting_user

    acting = acting_user()
    if acting:
        return acting
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry in some containers
        return os.environ.get("USER")


def host() -> str:
    return socket.gethostname()


def source() -> str | None:
    main = sys.modules.get("__main__")
    f = getattr(main, "__file__", None)
    return os.path.abspath(f) if f else (sys.argv[0] or None)


def git_commit(start: str | os.PathLike | None = None) -> str | None:
    """The commit of the git checkout holding ``start`` (read from .git, no subprocess)."""
    p = Path(start or os.getcwd()).resolve()
    for d in (p, *p.parents):
        git = d / ".git"
        if git.is_file():  # worktree: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (d / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            try:
                head = (git / "HEAD").read_text().strip()
                if not head.startswith("ref:"):
                    return head or None
                ref = head.split(":", 1)[1].strip()
                ref_file = git / ref
                if ref_file.is_file():
                    return ref_file.read_text().strip()
                packed = git / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return line.split()[0]
            except OSError:
                return None
            return None
    return None
