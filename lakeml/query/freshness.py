"""Read-your-writes: before any read, commit what this process still has pending for the lake, and
wait for what lakeml processes that exited on this machine left to a drain helper."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("lakeml.freshness")

RETRY_AFTER_S = 60.0  # after a wait that gave up, reads skip it this long (no stall on every read)


def lake_identity(config: Any) -> tuple:
    """What makes two clients of this process write the same lake: catalog, its location, namespace."""
    props = config.properties
    return (config.catalog_name, props.get("uri"), props.get("warehouse"), config.namespace)


class ReadYourWrites:
    """Called by every component before it reads, so a read sees this process's earlier writes: those
    of its own committer and of any other open client of the same lake in this process (e.g. the
    fluent API's, read back with a second ``lakeml.connect()``), and those of lakeml processes on this
    machine that have exited and whose spools a drain helper is committing (``python train.py &&
    lakeml runs list``; see :func:`lakeml.storage.drain.wait_for_drains`).

    Cheap when nothing is pending (a row count per open committer, a listing of the spool root and
    a few non-blocking ``flock`` tries); otherwise it flushes, or waits (at most the commit deadline).
    """

    def __init__(self, committer: Any):
        self._committer = committer
        self._lake = lake_identity(committer.store.config)
        self._skip_until = 0.0
        self.recover: Any = None  # () -> RecoveryReport; default: recover the dead spools under the root here

    def __call__(self) -> None:
        from lakeml.storage.committer import live_committers

        if self._committer.pending_rows():
            self._committer.flush()
        for c in live_committers():
            if c is not self._committer and c.pending_rows() and lake_identity(c.store.config) == self._lake:
                c.flush()
        self.wait_for_drains()

    def wait_for_drains(self) -> bool:
        """Wait for exited processes' spools under this lake's spool root to be committed (see
        :func:`lakeml.storage.drain.wait_for_drains`); recovers them here when nobody else does."""
        from lakeml.storage.drain import wait_for_drains

        root = getattr(self._committer.spool, "root", None)
        if root is None or time.monotonic() < self._skip_until:
            return True
        try:
            ok = wait_for_drains(root, self._committer.deadline, recover=self._recover)
        except OSError as e:  # an unreadable spool folder must not stop a read
            log.warning("cannot look for unrecovered spools under %s: %s", root, e)
            ok = False
        if not ok:
            log.warning("lakeml: spools of exited processes under %s are not committed yet; this read may miss "
                        "their latest rows (see `lakeml doctor`, `lakeml recover`)", root)
            self._skip_until = time.monotonic() + RETRY_AFTER_S
        return ok

    def _recover(self) -> bool:
        if self.recover is not None:  # the lake's: joins the recovery connect() started, uses its clock
            report = self.recover()
        else:
            from lakeml.storage.recovery import recover

            c = self._committer
            report = recover(c.store, c.spool.root, deadline=c.deadline)
        return not any(o.error for o in report.owners)
