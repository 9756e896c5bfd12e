"""Prediction rows built, spooled and committed in a child process, so a busy service keeps its GIL.

In one process, the logging thread's work (Arrow calls that release and retake the GIL, the spool's
writes, pyiceberg's commit) makes the request thread hand the GIL over and wait for it thousands of
times a second: measured with ``benchmarks/bench_serving.py``, that cost 10-16% of requests per second
although the logging thread used ~5% of a core. With a :class:`LogProcess` the logging thread only
gathers a second of requests into a few arrays (:func:`lakeml.serving.predframe.gather`) and sends
them over a pipe; the child builds the rows, writes them to its lake's spool (fsync) and answers, and
its committer commits them. A batch the child has not acknowledged when it dies is built in-process
instead, so nothing is lost; rows it had spooled are recovered from its spool like any dead process's.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import pickle
import signal
import threading
from typing import Any

log = logging.getLogger("lakeml.serving")

TABLE = "predictions"


class LogProcessGone(RuntimeError):
    """The child is not there (it died, failed to start, or was closed): log in-process."""


class LogProcess:
    """The child's end: ``factory`` (``"module:function"``, called with ``kwargs`` in the child) opens the
    lake whose committer and ``predictions`` contract the child uses. One logging thread uses it."""

    def __init__(self, factory: str, kwargs: dict[str, Any]):
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        # two one-way pipes, the outgoing one enlarged: a batch (megabytes) then takes a few writes, each
        # of which gives the GIL away and takes it back, instead of one per 64 KB
        child_in, self._out = ctx.Pipe(duplex=False)
        self._in, child_out = ctx.Pipe(duplex=False)
        _enlarge(self._out)
        self._proc = ctx.Process(target=_child_main, args=(child_in, child_out, factory, kwargs),
                                 name="lakeml-predlog-proc", daemon=True)
        self._proc.start()
        child_in.close()
        child_out.close()
        self._ready = False
        self._dead = False
        self._lock = threading.Lock()
        self.batches = 0  # batches the child acknowledged

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
                    log.warning("the prediction log process could not start (%s); logging in-process", msg)
            except (EOFError, OSError):
                self._dead = True
        return False

    def _call(self, msg: Any) -> Any:
        with self._lock:
            if self._dead:
                raise LogProcessGone("the prediction log process is gone")
            try:
                self._out.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
                kind, value = self._in.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                self._dead = True
                raise LogProcessGone(f"the prediction log process died ({type(e).__name__})") from e
        if kind == "error":
            raise value
        return value

    def log(self, gathered: list[Any], service: str) -> int:
        """Have the child build and spool the rows of ``gathered`` (predframe.Gathered); returns the rows,
        once they are in the child's spool. Raises :class:`LogProcessGone`, or what the child raised."""
        n = self._call(("log", service, gathered))
        self.batches += 1
        return n

    def flush(self) -> None:
        """Wait until the child has committed every row it was given."""
        self._call(("flush",))

    def close(self, timeout: float = 120.0) -> None:
        """The child commits what it holds and exits (one that was never sent a batch is just stopped)."""
        with self._lock:
            given = self._ready and not self._dead
            if given:
                try:
                    self._out.send_bytes(pickle.dumps(None))
                    self._in.recv()  # its last commit is done (or failed: its spool keeps the rows)
                except (EOFError, OSError):
                    pass
            self._dead = True
        if not given:
            self._proc.kill()  # it holds no rows (it ignores SIGTERM: the parent decides when it stops)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._out.close()
        self._in.close()


def _enlarge(conn: Any) -> None:
    """Grow the pipe behind ``conn`` to 1 MB (Linux ``F_SETPIPE_SZ``; the system's maximum if lower)."""
    try:
        import fcntl

        limit = 1 << 20
        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                limit = min(limit, int(f.read()))
        except (OSError, ValueError):
            pass
        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), limit)
    except (ImportError, OSError, ValueError):  # not Linux, or not allowed: the default size works too
        pass


def _child_main(conn: Any, out: Any, factory: str, kwargs: dict[str, Any]) -> None:
    """Open the lake, then build, spool and commit the batches the parent sends until it says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (after its last request)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        mod, _, fn = factory.partition(":")
        lake = getattr(importlib.import_module(mod), fn)(**kwargs)
        from lakeml.serving.predframe import table_of_gathered

        schema = lake.store.contracts[TABLE].arrow_schema()
        buffer = lake.committer.buffer(TABLE)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which logs in-process
        out.send(f"{type(e).__name__}: {e}")
        return
    out.send("ready")
    try:
        while True:
            try:
                msg = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the parent is gone: commit what we hold
                return
            if msg is None:
                lake.close()
                out.send(("ok", 0))
                return
            try:
                if msg[0] == "flush":
                    lake.committer.flush()
                    out.send(("ok", 0))
                    continue
                _, service, gathered = msg
                tables = [table_of_gathered(g, schema, service) for g in gathered]
            except Exception as e:  # noqa: BLE001 - nothing kept: the parent logs the batch in-process
                out.send(("error", _picklable(e)))
                continue
            for t in tables:
                buffer.add_arrow(t)
            try:  # in the spool before the parent forgets them
                lake.committer.sync() if lake.committer.spool is not None else lake.committer.handoff()
            except Exception as e:  # noqa: BLE001 - the rows stay queued here and are committed as usual
                log.warning("prediction rows not spooled (%s); they are committed as usual", e)
            out.send(("ok", sum(t.num_rows for t in tables)))
    finally:
        try:
            lake.close()  # idempotent: commits what is left when the parent went away
        except Exception as e:  # noqa: BLE001 - the spool keeps the rows
            log.warning("the prediction log process could not commit at exit: %s", e)


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - an exception pickle cannot carry: its text in a RuntimeError
        return RuntimeError(f"{type(e).__name__}: {e}")
