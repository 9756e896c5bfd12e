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

import logging
from typing import Any

from lakeml.storage.childproc import ChildGone, ChildProcess, open_in_child, picklable
from lakeml.storage.spool import ipc_bytes

log = logging.getLogger("lakeml.commitproc")

__all__ = ["ChildAppender", "ChildGone"]


class ChildAppender(ChildProcess):
    """Appends to the tables of the store that ``factory`` (``"module:function"``, called with ``kwargs`` in
    the child) opens. Used by one committer thread at a time (the committer's commit lock)."""

    def __init__(self, factory: str, kwargs: dict[str, Any]):
        super().__init__(_child_main, factory, kwargs, name="lakeml-commit-proc", what="the commit process")
        self.appends = 0

    def append(self, table: str, data: Any, props: dict[str, str], uncertain: bool, batch_id: str,
               created_ms: int) -> bool:
        """Append ``data`` to ``table`` in the child; True if an earlier attempt had landed (nothing appended).
        Raises what the child raised (a commit conflict is retried by the caller), or :class:`ChildGone`."""
        payload = ipc_bytes(data)

        def send(conn: Any) -> None:
            conn.send((table, props, uncertain, batch_id, created_ms))
            conn.send_bytes(payload)

        try:
            landed = self.request(send)
        except ChildGone as e:
            raise ChildGone(f"{e} during an append to {table}; the append is retried in-process, after "
                            "checking whether it landed") from e
        self.appends += 1
        return bool(landed)


def _child_main(conn: Any, out: Any, factory: str, kwargs: dict[str, Any]) -> None:
    """The child: open the store, then append what the parent sends until it says stop or goes away."""
    try:
        store, maintainer = open_in_child(factory, kwargs)
        import pyarrow as pa

        from lakeml.storage.committer import Batch, batch_landed
        from lakeml.storage.tables import append
    except Exception as e:  # noqa: BLE001 - reported to the parent, which commits in-process
        out.send(f"{type(e).__name__}: {e}")
        return
    out.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing more to do
            return
        if msg is None:
            out.send(("ok", None))
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
                out.send(("ok", True))
                continue
            append(tbl, data, props)
        except Exception as e:  # noqa: BLE001 - handed to the parent's retry loop
            out.send(("error", picklable(e)))
            continue
        out.send(("ok", False))
        if maintainer is not None:
            try:
                maintainer.note_commit(table, tbl)
                maintainer.run_due()
            except Exception as e:  # noqa: BLE001 - maintenance never stops the commits
                log.warning("automatic maintenance of %s failed in the commit process: %s", table, e)
