"""A helper process that does one kind of lakeml work for its parent (storage/commitproc.py,
serving/logproc.py): started with ``spawn``, answering over two pipes, never stopped by a signal.

The parent's end, :class:`ChildProcess`, never blocks on a child that is still starting (:meth:`usable`),
turns a dead child into :class:`ChildGone` (the caller then does the work in-process), and re-raises
what the child reported. The child's end opens its lake with :func:`open_in_child`, says ``"ready"``,
answers each request with ``("ok", value)`` or ``("error", exception)``, and answers ``None`` (stop)
once it has finished.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import pickle
import signal
import threading
from typing import Any, Callable

log = logging.getLogger("lakeml.childproc")

PIPE_BYTES = 1 << 20  # the parent's outgoing pipe: a request of megabytes takes a few writes, not one per 64 KB


class ChildGone(RuntimeError):
    """The child is not there (it died, failed to start, or was closed): do the work in-process."""


class ChildProcess:
    """The parent's end. ``target(conn_in, conn_out, factory, kwargs)`` runs in the child; ``what`` names
    it in messages ("the commit process"). One thread at a time sends requests (a lock guards the pipes)."""

    def __init__(self, target: Callable[..., None], factory: str, kwargs: dict[str, Any], *, name: str, what: str):
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        child_in, self._out = ctx.Pipe(duplex=False)
        self._in, child_out = ctx.Pipe(duplex=False)
        _enlarge(self._out)
        self._proc = ctx.Process(target=target, args=(child_in, child_out, factory, kwargs), name=name, daemon=True)
        self._proc.start()
        child_in.close()
        child_out.close()
        self.what = what
        self._ready = False
        self._dead = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def usable(self) -> bool:
        """True once the child has opened its lake (until it dies or is closed); never blocks."""
        if self._dead:
            return False
        if self._ready:
            return True
        with self._lock:
            try:
                if self._in.poll():
                    msg = self._in.recv()
                    if msg == "ready":
                        self._ready = True
                        return True
                    self._dead = True
                    log.warning("%s could not start (%s); the work is done in-process", self.what, msg)
            except (EOFError, OSError):
                self._dead = True
        return False

    def request(self, send: Callable[[Any], None]) -> Any:
        """``send(conn)`` writes one request; returns the child's answer. Raises what the child raised, or
        :class:`ChildGone`."""
        with self._lock:
            if self._dead:
                raise ChildGone(f"{self.what} is gone")
            try:
                send(self._out)
                kind, value = self._in.recv()
            except (EOFError, OSError) as e:
                self._dead = True
                raise ChildGone(f"{self.what} died ({type(e).__name__})") from e
        if kind == "error":
            raise value
        return value

    def close(self, timeout: float = 120.0) -> None:
        """Let the child finish what it holds and exit; one that never got a request is just stopped."""
        with self._lock:
            asked = self._ready and not self._dead
            if asked:
                try:
                    self._out.send(None)
                    self._in.recv()  # done (or failed: it logged why)
                except (EOFError, OSError):
                    pass
            self._dead = True
        if not asked:
            self._proc.kill()  # it holds nothing (and ignores SIGTERM: the parent decides when it stops)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._out.close()
        self._in.close()


def open_in_child(factory: str, kwargs: dict[str, Any]) -> Any:
    """In the child: ignore SIGINT/SIGTERM (the parent stops it after its last request), then call
    ``factory`` (``"module:function"``) with ``kwargs``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    mod, _, fn = factory.partition(":")
    return getattr(importlib.import_module(mod), fn)(**kwargs)


def picklable(e: BaseException) -> BaseException:
    """``e``, or its text in a RuntimeError when pickle cannot carry it to the parent."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any failure to pickle
        return RuntimeError(f"{type(e).__name__}: {e}")


def _enlarge(conn: Any) -> None:
    """Grow the pipe behind ``conn`` to :data:`PIPE_BYTES` (Linux ``F_SETPIPE_SZ``; the system's maximum
    if lower). Each write gives the GIL away and takes it back, so fewer writes disturb the parent less."""
    try:
        import fcntl

        limit = PIPE_BYTES
        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                limit = min(limit, int(f.read()))
        except (OSError, ValueError):
            pass
        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), limit)
    except (ImportError, OSError, ValueError):  # not Linux, or not allowed: the default size works too
        pass
