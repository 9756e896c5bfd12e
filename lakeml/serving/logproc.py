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

import logging
import pickle
from typing import Any

from lakeml.storage.childproc import ChildProcess, open_in_child, picklable

log = logging.getLogger("lakeml.serving")

TABLE = "predictions"

class LogProcess(ChildProcess):
    """The child's end: ``factory`` (``"module:function"``, called with ``kwargs`` in the child) opens the
    lake whose committer and ``predictions`` contract the child uses. One logging thread uses it."""

    def __init__(self, factory: str, kwargs: dict[str, Any]):
        super().__init__(_child_main, factory, kwargs, name="lakeml-predlog-proc",
                         what="the prediction log process")
        self.batches = 0  # batches the child acknowledged

    def _call(self, msg: Any) -> Any:
        payload = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        return self.request(lambda conn: conn.send_bytes(payload))

    def log(self, gathered: list[Any], service: str) -> int:
        """Have the child build and spool the rows of ``gathered`` (predframe.Gathered); returns the rows,
        once they are in the child's spool. Raises :class:`~lakeml.storage.childproc.ChildGone`, or what the child raised."""
        n = self._call(("log", service, gathered))
        self.batches += 1
        return n

    def flush(self) -> None:
        """Wait until the child has committed every row it was given."""
        self._call(("flush",))


def _child_main(conn: Any, out: Any, factory: str, kwargs: dict[str, Any]) -> None:
    """Open the lake, then build, spool and commit the batches the parent sends until it says stop."""
    try:
        lake = open_in_child(factory, kwargs)
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
                raw = conn.recv_bytes()
            except (EOFError, OSError):  # the parent is gone: commit what we hold
                return
            msg = pickle.loads(raw)
            if msg is None:  # stop (ChildProcess.close)
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
                out.send(("error", picklable(e)))
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
