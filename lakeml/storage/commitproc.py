"""Iceberg appends in a child process, so a server's requests never wait behind a commit.

pyiceberg's append (manifests, metadata, the catalog's CAS) is Python that holds the GIL for tens of
milliseconds; in a server every request in flight waits meanwhile (benchmarks/bench_server.py: p99 at
the server 13 ms with no commits during the load, 76-115 ms with a commit a second). With a
:class:`ChildAppender` the committer keeps all its bookkeeping (buffers, spool, merged batches, retries,
idempotency) and only hands each append to a child process over a pipe: the Arrow table as IPC bytes,
the snapshot properties, and whether an earlier attempt may have landed. The child opens the same
catalog, checks for that earlier attempt, appends, answers, then runs the lake's automatic maintenance.
If the child dies, the attempt fails (retried: the next one checks whether it landed) and the committer
appends in-process again.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import signal
import threading
from typing import Any

from lakeml.storage.spool import ipc_bytes

log = logging.getLogger("lakeml.commitproc")

READY_TIMEOUT = 120.0  # seconds the child may take to import and open the catalog


class ChildGone(RuntimeError):
    """The commit process is not there (it died, or was closed); the committer appends in-process."""


class ChildAppender:
    """Appends to the tables of the store that ``factory`` (``"module:function"``, called with ``kwargs`` in
    the child) opens. Used by one committer thread at a time (the committer's commit lock)."""

    def __init__(self, factory: str, kwargs: dict[str, Any]):
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child, factory, kwargs), name="lakeml-commit-proc",
                                 daemon=True)
        self._proc.start()
        child.close()
        self._ready = threading.Event()
        self._dead = False
        self._lock = threading.Lock()
        self.appends = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def usable(self) -> bool:
        """True once the child has opened the catalog (until it dies or is closed); never blocks."""
        if self._dead:
            return False
        if self._ready.is_set():
            return True
        with self._lock:
            try:
                if self._conn.poll():
                    msg = self._conn.recv()
                    if msg == "ready":
                        self._ready.set()
                        return True
                    self._dead = True
                    log.warning("the commit process could not start (%s); committing in-process", msg)
            except (EOFError, OSError):
                self._dead = True
        return False

    def append(self, table: str, data: Any, props: dict[str, str], uncertain: bool, batch_id: str,
               created_ms: int) -> bool:
        """Append ``data`` to ``table`` in the child; True if an earlier attempt had landed (nothing appended).
        Raises what the child raised (a commit conflict is retried by the caller), or :class:`ChildGone`."""
        payload = ipc_bytes(data)
        with self._lock:
            if self._dead:
                raise ChildGone("the commit process is gone")
            try:
                self._conn.send((table, props, uncertain, batch_id, created_ms))
                self._conn.send_bytes(payload)
                kind, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                self._dead = True
                raise ChildGone(f"the commit process died during an append to {table} ({type(e).__name__}); the "
                                "append is retried in-process, after checking whether it landed") from e
        if kind == "error":
            raise value
        self.appends += 1
        return bool(value)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child after the append in progress (if any)."""
        with self._lock:
            if not self._dead:
                try:
                    self._conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
            self._dead = True
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()


def _child_main(conn: Any, factory: str, kwargs: dict[str, Any]) -> None:
    """The child: open the store, then append what the parent sends until it says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (after its last commit)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        mod, _, fn = factory.partition(":")
        store, maintainer = getattr(importlib.import_module(mod), fn)(**kwargs)
        import pyarrow as pa

        from lakeml.storage.committer import Batch, batch_landed
        from lakeml.storage.tables import append
    except Exception as e:  # noqa: BLE001 - reported to the parent, which commits in-process
        conn.send(f"{type(e).__name__}: {e}")
        return
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing more to do
            return
        if msg is None:
            return
        table, props, uncertain, batch_id, created_ms = msg
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):  # the parent is gone mid-message
            return
        try:
            data = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
            tbl = store.table(table, refresh=True)
            if uncertain and batch_landed(tbl, Batch(table, data=data, batch_id=batch_id, created_ms=created_ms)):
                conn.send(("ok", True))
                continue
            append(tbl, data, props)
        except Exception as e:  # noqa: BLE001 - handed to the parent's retry loop
            conn.send(("error", _picklable(e)))
            continue
        conn.send(("ok", False))
        if maintainer is not None:
            try:
                maintainer.note_commit(table, tbl)
                maintainer.run_due()
            except Exception as e:  # noqa: BLE001 - maintenance never stops the commits
                log.warning("automatic maintenance of %s failed in the commit process: %s", table, e)


def _picklable(e: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - an exception pickle cannot carry: its text in a RuntimeError
        return RuntimeError(f"{type(e).__name__}: {e}")
