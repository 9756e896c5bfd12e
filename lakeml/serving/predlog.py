"""Inference logging: one ``predictions`` row per scored input row, written off the request path.

A request hands its rows to :meth:`PredictionLogger.log` (a queue put: no JSON, no Arrow on the request
thread); a daemon thread turns them into row tuples in the contract's column order and appends them to
``lake.committer.buffer("predictions")``, whose commit thread writes them to Iceberg in batches.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from typing import Any, Sequence

from lakeml.serving.predframe import Scored, as_row_item, fast_scored, gathered_of, table_of_gathered
from lakeml.storage.childproc import ChildGone

log = logging.getLogger("lakeml.serving")

TABLE = "predictions"
#: Rows the logger may hold before it drops new ones (counted in ``dropped``) rather than grow without bound.
MAX_PENDING_ROWS = 1_000_000
_INF = float("inf")
NCOLS = 15  # columns of the predictions contract
#: Seconds the logging thread lets requests gather before it converts them and writes them to the spool.
#: Fewer, larger batches cost the request thread less (benchmarks/bench_serving.py: 0.2 s cost ~8% more
#: requests per second than 1 s); the rows are in the local spool within about this long.
BATCH_WAIT = 1.0


def _now_us() -> int:
    return time.time_ns() // 1000


def _plain(v: Any) -> Any:
    """A JSON-ready copy of a model output or input value (numpy scalars and arrays, NaN as null)."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def as_number(v: Any) -> float | None:
    """The prediction as a double: numbers and booleans (a class label 0/1); null for anything else."""
    if hasattr(v, "item") and not hasattr(v, "__len__"):
        v = v.item()
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


class PredictionLogger:
    """Log scored rows to the ``predictions`` table through the lake's committer.

    ``lake``: an open Lake (only ``lake.committer`` and the table contract in ``lake.store`` are used). ``model_name``/``model_version``/
    ``model_uri``/``service``: what every row records (``set_model`` changes the model after a reload).
    ``process``: a :class:`lakeml.serving.logproc.LogProcess` that builds, spools and commits the rows of
    float-matrix requests in a child process (the logger closes it); other rows go through ``lake``.
    """

    def __init__(self, lake: Any, *, model_name: str | None = None, model_version: int | None = None,
                 model_uri: str | None = None, service: str = "lakeml-serve",
                 max_pending_rows: int = MAX_PENDING_ROWS, process: Any = None):
        self.committer = lake.committer
        self.store = lake.store
        self.buffer = lake.committer.buffer(TABLE)
        self._schema: Any = None
        self.model_name, self.model_version, self.model_uri = model_name, model_version, model_uri
        self.service = service
        self.max_pending_rows = max_pending_rows
        self.process = process  # a lakeml.serving.logproc.LogProcess: float-matrix requests are logged there
        self.logged = 0  # rows handed to the committer
        self.dropped = 0  # rows dropped because more than max_pending_rows were waiting
        self._pending = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._closed = False
        self._stop = threading.Event()  # set by close(): no more gathering pauses
        self._hurry = threading.Event()  # set by drain(): convert what is queued now
        import polars  # noqa: F401 - imported here, not first in the logging thread while requests import it too

        self._thread = threading.Thread(target=self._loop, name="lakeml-predlog", daemon=True)
        self._thread.start()

    def set_model(self, *, model_name: str | None, model_version: int | None, model_uri: str | None) -> None:
        """The model that scores from now on (rows already queued keep the model they were scored by)."""
        self.model_name, self.model_version, self.model_uri = model_name, model_version, model_uri

    def log(self, request_id: str, rows_features: Sequence[dict] | Any | None, predictions: Sequence[Any] | None,
            latency_ms: float, status: int, error: str | None = None, *, ts_us: int | None = None,
            model_version: int | None = None, inputs: Any = None, outputs: Any = None) -> None:
        """Queue one request's rows: one row per input row, or one row with row_index -1 when it failed
        (``error`` set, or no predictions). Returns at once; the rows reach Iceberg with the next commit.

        ``rows_features``: one dict per input row, or a :class:`lakeml.serving.protocol.Batch` (its rows
        are turned into JSON in the logging thread, reusing the request's own text when it can).
        ``model_version``: the version that scored these rows, when it is not the logger's current one.
        ``inputs``/``outputs``: what the model took and returned (a float matrix and a 1-D numeric array
        take the columnar path of :mod:`lakeml.serving.predframe`)."""
        n = max(len(rows_features or ()), 1)
        if self._closed:
            raise RuntimeError("PredictionLogger.log() after close()")
        if self._pending + n > self.max_pending_rows:
            self.dropped += n
            if self.dropped == n or self.dropped % 100_000 < n:
                log.warning("lakeml serve: %d prediction rows dropped: more than %d rows wait for the committer "
                            "(is the lake reachable?)", self.dropped, self.max_pending_rows)
            return
        self._pending += n
        item = (request_id, rows_features, predictions, latency_ms, status, error,
                ts_us if ts_us is not None else _now_us(),
                self.model_name, model_version if model_version is not None else self.model_version, self.model_uri)
        if inputs is not None:
            try:
                scored = fast_scored(item, inputs, outputs)
            except Exception:  # noqa: BLE001 - an odd input: the generic path logs it
                scored = None
            if scored is not None:  # keep the two arrays, not the request's row lists (less for the GC to walk)
                self._queue.put((n, scored._replace(item=item[:1] + (None, None) + item[3:])))
                return
        self._queue.put((n, item))

    def rows_of(self, item: tuple) -> list[tuple]:
        """The ``predictions`` row tuples of one queued request (contract column order)."""
        cols: list[list] = [[] for _ in range(NCOLS)]
        self.extend_columns(item, cols)
        return list(zip(*cols))

    def extend_columns(self, item: tuple, cols: list[list]) -> int:
        """Append one queued request to the contract's columns; returns the rows added. The values shared
        by the request's rows are repeated by list multiplication, so a row costs little Python work."""
        request_id, feats, preds, latency_ms, status, error, ts, name, version, uri = item[:10]
        lat = float(latency_ms) if latency_ms is not None else None
        if feats is not None and hasattr(feats, "features_json"):  # a protocol.Batch: JSON made here
            feats = feats.features_json()
        elif feats is not None:
            feats = [json.dumps(_plain(f), default=str) for f in feats]
        if error is not None or not preds:
            values = (request_id, -1, ts, name, version, uri, self.service, feats[0] if feats and len(feats) == 1
                      else None, None, None, lat, int(status), error if error is not None else "no predictions",
                      None, None)
            for c, v in zip(cols, values):
                c.append(v)
            return 1
        n = len(preds)
        nums: list[float | None] = []
        texts: list[str] = []
        dumps = json.dumps
        for p in preds:
            if type(p) is float or type(p) is int:  # the common case, without the generic conversions
                num = float(p) if p == p and p not in (_INF, -_INF) else None
                nums.append(num)
                texts.append(repr(p) if num is not None else "null")
            else:
                pj = _plain(p)
                nums.append(as_number(pj))
                texts.append(dumps(pj, default=str))
        if feats is None or len(feats) != n:
            feats = [(feats[i] if feats is not None and i < len(feats) else None) for i in range(n)]
        for c, v in ((0, request_id), (2, ts), (3, name), (4, version), (5, uri), (6, self.service), (10, lat),
                     (11, int(status)), (12, None), (13, None), (14, None)):
            cols[c].extend([v] * n)
        cols[1].extend(range(n))
        cols[7].extend(feats)
        cols[8].extend(nums)
        cols[9].extend(texts)
        return n

    def _arrow(self, cols: list[list]) -> Any:
        import pyarrow as pa

        schema = self._arrow_schema()
        return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(cols, schema)], schema=schema)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]  # (rows, queued request) pairs
            if not self._stop.is_set():  # let requests gather: one Arrow table for many (rows commit later anyway)
                self._hurry.wait(BATCH_WAIT)
                self._hurry.clear()
            try:  # take what else is waiting: one buffer append for many requests
                while len(batch) < 5000:
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        self._queue.put(None)
                        break
                    batch.append(nxt)
            except queue.Empty:
                pass
            n = self._convert(batch)
            try:  # into the local spool now, from this thread (one write per batch)
                self.committer.handoff()
            except Exception:  # noqa: BLE001 - the rows stay queued and are committed as usual
                log.exception("lakeml serve: spooling the prediction rows failed")
            with self._idle:
                self.logged += n
                self._pending -= sum(k for k, _ in batch)
                self._idle.notify_all()

    def _convert(self, batch: list[tuple]) -> int:
        """Hand the rows of ``batch`` (queued ``(rows, request)`` pairs) to the committer's buffer; returns the
        rows added."""
        fast = [it for _, it in batch if isinstance(it, Scored)]
        slow = [it for _, it in batch if not isinstance(it, Scored)]
        n = 0
        if fast:
            tables: list[Any] = []
            try:
                gathered = gathered_of(fast)
                sent = self._to_process(gathered)
                if sent is not None:
                    n += sent
                else:
                    tables = [table_of_gathered(g, self._arrow_schema(), self.service) for g in gathered]
            except Exception:  # noqa: BLE001 - e.g. a library quirk: fall back to the generic path
                log.exception("lakeml serve: columnar prediction log failed; using the row path")
                tables, slow = [], [as_row_item(s) for s in fast] + slow
            for t in tables:
                self.buffer.add_arrow(t)
                n += t.num_rows
        cols: list[list] = [[] for _ in range(NCOLS)]
        m = 0
        for it in slow:
            try:
                m += self.extend_columns(it, cols)
            except Exception:  # noqa: BLE001 - a bad request must not stop the logger
                log.exception("lakeml serve: cannot log request %s", it[0])
                cols = [c[:m] for c in cols]  # drop that request's partial columns
        if m:
            try:
                self.buffer.add_arrow(self._arrow(cols))  # columnar: no per-row work in the committer
            except Exception:  # noqa: BLE001 - e.g. a value Arrow cannot type: the row path quarantines it
                self.buffer.extend(list(zip(*cols)))
        return n + m

    def _to_process(self, gathered: list[Any]) -> int | None:
        """Rows the log process built and spooled, or None (no process, or it is not ready or gone)."""
        proc = self.process
        if proc is None or not proc.usable():
            return None
        try:
            return proc.log(gathered, self.service)
        except ChildGone as e:
            log.warning("lakeml serve: %s; logging in-process from now on", e)
            return None

    def _arrow_schema(self) -> Any:
        if self._schema is None:
            self._schema = self.store.contracts[TABLE].arrow_schema()
        return self._schema

    def drain(self, timeout: float | None = 30) -> None:
        """Wait until every queued request is in the committer's buffer (not yet committed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._hurry.set()
        with self._idle:
            while self._pending > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{self._pending} prediction rows still queued after {timeout} s")
                self._idle.wait(left if left is not None else 1.0)

    def flush(self, timeout: float | None = 60) -> None:
        """Drain the queue and commit the rows to Iceberg (returns once they are readable)."""
        self.drain(timeout)
        if self.process is not None and self.process.usable():
            try:
                self.process.flush()
            except ChildGone:
                pass
        self.committer.flush(timeout)

    def close(self, timeout: float | None = 60) -> None:
        """Flush and stop the logging thread."""
        if self._closed:
            return
        self._stop.set()
        self._hurry.set()
        self.drain(timeout)
        self._closed = True
        self._queue.put(None)
        self._thread.join(5)
        if self.process is not None:
            self.process.close()  # the child commits what it holds
        self.committer.flush(timeout)
