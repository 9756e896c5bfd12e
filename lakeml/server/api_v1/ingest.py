"""Durable, idempotent writes for ``/api/v1``: a request is acknowledged once its rows are safe
against ``kill -9``, and a retried request is recognised and never stored twice.

* **Durable.** A write adds its rows to the server's one committer (shared by every client), then
  waits in :class:`GroupSync` until a ``Committer.sync()`` (rows into the fsynced local spool) has
  covered them. Concurrent requests share one sync: whoever finds no sync running leads the next one
  for everybody who has added rows so far, so one fsync acknowledges many requests.
* **Idempotent.** A client names each write with ``X-Lakeml-Batch-Id``. The key is stored as a row of
  the ``api_batches`` table, added inside ``Committer.together()`` with the request's rows, so the
  spool keeps both or neither. The server remembers the keys it accepted (in memory); a request marked
  as a retry (``X-Lakeml-Retry: 1``) whose key it does not remember is looked up in ``api_batches``
  after the reads' recovery of dead spools (a server killed and restarted on the same machine), so a
  batch accepted just before a crash is answered "already accepted" instead of being stored again.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from typing import Any, Callable

log = logging.getLogger("lakeml.server.ingest")

TABLE = "api_batches"
BATCH_HEADER = "x-lakeml-batch-id"
RETRY_HEADER = "x-lakeml-retry"
TIME_HEADER = "x-lakeml-batch-time"  # when the client first made the batch (ms): bounds the lookup of a retry
SKEW_MS = 3_600_000  # clock skew allowed between a client and the server
REMEMBER = 1_000_000  # accepted keys kept in memory (older ones are looked up in the table on a retry)
_KEY_RULE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def check_batch_id(key: str | None) -> str | None:
    """The request's idempotency key (None when it has none); 400 naming the header when malformed."""
    if key is None or key == "":
        return None
    if not _KEY_RULE.fullmatch(key):
        from lakeml.server.errors import ApiError

        raise ApiError(400, f"X-Lakeml-Batch-Id {key[:40]!r} is not a valid idempotency key: use 8 to 128 letters, "
                            "digits, '.', '_', ':' or '-' (e.g. a uuid4 hex)", field="X-Lakeml-Batch-Id")
    return key


class GroupSync:
    """Make buffered rows durable, one ``sync`` for every request waiting at that moment."""

    def __init__(self, committer: Any):
        self.committer = committer
        self._cv = threading.Condition()
        self._ticket = 0  # rows of requests up to this ticket are in the buffers
        self._done = 0  # ... and up to this one durable
        self._leading = False
        self._results: collections.deque = collections.deque(maxlen=256)  # (last ticket covered, error)
        self.syncs = 0
        self.requests = 0

    def ticket(self) -> int:
        """Call right after adding rows: the number to :meth:`wait` for."""
        with self._cv:
            self._ticket += 1
            self.requests += 1
            return self._ticket

    def wait(self, ticket: int) -> None:
        """Return once the rows added before ``ticket`` are durable; raise what made that fail."""
        with self._cv:
            while self._done < ticket:
                if self._leading:
                    self._cv.wait()
                    continue
                self._leading = True
                target = self._ticket
                err: BaseException | None = None
                self._cv.release()
                try:
                    self._sync()
                except BaseException as e:  # handed to every request this sync covered
                    err = e
                finally:
                    self._cv.acquire()
                    self._leading = False
                    self._done = max(self._done, target)
                    self._results.append((target, err))
                    self.syncs += 1
                    self._cv.notify_all()
            for last, err in self._results:
                if last >= ticket:
                    if err is not None:
                        raise err
                    return

    def _sync(self) -> None:
        c = self.committer
        if c.spool is None:  # no spool: durable means committed
            c.flush()
        else:
            c.sync()


class Ingest:
    """The server's write door for ``/api/v1``: dedup by batch id, atomic key + rows, group fsync."""

    def __init__(self, lake: Any):
        self.lake = lake
        self.sync = GroupSync(lake.committer)
        self._accepted: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.duplicates = 0
        self._preload()

    def _preload(self, window_s: float = 3600.0) -> None:
        """Remember the keys accepted in the last ``window_s`` (by any process: after a restart, the
        dead server's spool is recovered first), so a re-sent batch whose client cannot say it is a
        retry (MLflow's log-batch) is still recognised."""
        from pyiceberg.expressions import GreaterThanOrEqual

        try:
            self.lake.query.before_read()
            tbl = self.lake.store.table(TABLE, refresh=True)
            if tbl.current_snapshot() is None:
                return
            since = (time.time() - window_s) * 1e6
            keys = tbl.scan(row_filter=GreaterThanOrEqual("accepted_at", int(since)),
                            selected_fields=("batch_id",)).to_arrow().column("batch_id").to_pylist()
        except Exception as e:  # never stop writes: a retry is then looked up in the table as before
            log.warning("could not preload recent batch ids from %s: %s", TABLE, e)
            return
        for k in keys[-REMEMBER:]:
            self._accepted[k] = None

    @classmethod
    def of(cls, app_state: Any, lake: Any) -> "Ingest":
        ing = getattr(app_state, "lakeml_ingest", None)
        if ing is None or ing.lake is not lake:
            with _OF_LOCK:
                ing = getattr(app_state, "lakeml_ingest", None)
                if ing is None or ing.lake is not lake:
                    ing = cls(lake)
                    app_state.lakeml_ingest = ing
        return ing

    def write(self, batch_id: str | None, retry: bool, user: str | None, route: str,
              prepare: Callable[[], Any], add: Callable[[Any], int], *, atomic: bool = True,
              since_ms: int | None = None) -> tuple[bool, Any]:
        """Run one write request; returns ``(duplicate, prepared)``.

        ``prepare()`` validates and reads what is needed (it may read the lake); ``add(prepared)``
        only adds rows to the committer's buffers and returns how many (inside ``together()`` when
        ``atomic``: it must not read or flush). Then the rows are made durable before returning."""
        if batch_id is None:
            prepared = prepare()
            n = self._add(None, user, route, add, prepared, atomic)
            self.sync.wait(self.sync.ticket())
            return False, prepared
        while True:
            with self._lock:
                if batch_id in self._accepted:
                    self.duplicates += 1
                    return True, None
                ev = self._inflight.get(batch_id)
                if ev is None:
                    ev = self._inflight[batch_id] = threading.Event()
                    break
            ev.wait()  # the same batch is being written by another request: its outcome decides
        accepted = False
        try:
            if retry and self._stored(batch_id, since_ms):
                self._remember(batch_id)
                self.duplicates += 1
                return True, None
            prepared = prepare()
            n = self._add(batch_id, user, route, add, prepared, atomic)
            accepted = True  # queued: even if the sync fails, a retry must not add the rows again
            del n
            self.sync.wait(self.sync.ticket())
            return False, prepared
        finally:
            with self._lock:
                if accepted:
                    self._remember_locked(batch_id)
                self._inflight.pop(batch_id, None)
            ev.set()

    def _add(self, batch_id: str | None, user: str | None, route: str, add: Callable[[Any], int], prepared: Any,
             atomic: bool) -> int:
        c = self.lake.committer
        keys = c.buffer(TABLE) if batch_id is not None else None
        if atomic:
            with c.together():
                n = add(prepared)
                if keys is not None:
                    keys.add((batch_id, _now_us(), user, route, n))
        else:
            n = add(prepared)
            if keys is not None:
                keys.add((batch_id, _now_us(), user, route, n))
        return n

    def _remember(self, batch_id: str) -> None:
        with self._lock:
            self._remember_locked(batch_id)

    def _remember_locked(self, batch_id: str) -> None:
        self._accepted[batch_id] = None
        self._accepted.move_to_end(batch_id)
        while len(self._accepted) > REMEMBER:
            self._accepted.popitem(last=False)

    def _stored(self, batch_id: str, since_ms: int | None = None) -> bool:
        """Is ``batch_id`` in ``api_batches``? First commits what is pending here and recovers the spools
        of dead processes (a killed server) as every read does, so their keys count. ``since_ms``: when
        the client made the batch; only the days since then (less :data:`SKEW_MS`) are read."""
        from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual

        lake = self.lake
        lake.query.before_read()
        tbl = lake.store.table(TABLE, refresh=True)
        if tbl.current_snapshot() is None:
            return False
        where: Any = EqualTo("batch_id", batch_id)
        if since_ms is not None:
            where = And(where, GreaterThanOrEqual("accepted_at", (since_ms - SKEW_MS) * 1000))
        return tbl.scan(row_filter=where, selected_fields=("batch_id",)).to_arrow().num_rows > 0


_OF_LOCK = threading.Lock()


def _now_us() -> int:
    return time.time_ns() // 1000
