"""Table-health methods of the client: ``Lake.maintain``, ``Lake.recover``, ``Lake.sync``."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from lakeml.storage.maintenance import (DEFAULT_ORPHAN_AGE_MS, AutoMaintainer, MaintenanceReport, Progress,
                                        existing_tables, maintain_table, now_ms_from, parse_duration_ms)
from lakeml.storage.recovery import RecoveryReport, recover
from lakeml.storage.retry import with_storage_defaults
from lakeml.errors import InvalidInputError
from lakeml.storage.spool import SPOOL_INTERVAL, Spool, has_dead_owners, spool_root

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.health")


class HealthMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` that keep the tables healthy."""

    store: "TableStore"
    config: "LakeConfig"
    committer: Any
    clock: Any

    # -- wiring (called from Lake.__init__) ----------------------------------------------------
    _storage_defaults = staticmethod(with_storage_defaults)

    @staticmethod
    def _health_parts(config: "LakeConfig", store: "TableStore") -> tuple[Spool | None, AutoMaintainer | None]:
        """The spool and the automatic maintainer for a new committer (either may be off)."""
        root = spool_root(config)
        try:
            interval = max(0.01, float(config.properties.get(SPOOL_INTERVAL, 200)) / 1000)
        except ValueError:
            raise InvalidInputError(f"{SPOOL_INTERVAL}={config.properties[SPOOL_INTERVAL]!r} is not a number of "
                                    "milliseconds; use e.g. 200") from None
        spool = Spool(root, interval=interval) if root is not None else None
        return spool, AutoMaintainer.from_config(store, config.properties)

    def _start_recovery(self) -> None:
        """Recover dead processes' spools in the background, if there are any."""
        self._recovery_thread: threading.Thread | None = None
        self._recovery_report: RecoveryReport | None = None
        root = spool_root(self.config)
        try:
            if not has_dead_owners(root):
                return
        except OSError as e:  # an unreadable spool folder must not stop connect()
            log.warning("cannot look for unrecovered spools under %s: %s", root, e)
            return

        def run() -> None:
            try:
                self._recovery_report = recover(self.store, root, deadline=self.committer.deadline,
                                                clock_us=self.clock)
                if self._recovery_report.rows or self._recovery_report.runs_killed:
                    log.warning("lakeml recovered %d rows of %d dead process(es); runs marked KILLED: %s",
                                self._recovery_report.rows, len(self._recovery_report.owners),
                                ", ".join(self._recovery_report.runs_killed) or "none")
            except Exception as e:  # pragma: no cover - reported, never raised in a daemon thread
                log.warning("background spool recovery failed: %s: %s", type(e).__name__, e)

        self._recovery_thread = threading.Thread(target=run, name="lakeml-recovery", daemon=True)
        self._recovery_thread.start()

    # -- public API ----------------------------------------------------------------------------
    def sync(self) -> int:
        """Make everything logged so far durable in the local spool (fsync), without waiting for
        Iceberg; returns the rows written. After it returns, a crash of this process loses none of
        them: the next lakeml process on this machine (or ``lakeml recover``) commits them."""
        return self.committer.sync()

    def recover(self, *, timeout: float | None = None) -> RecoveryReport:
        """Commit what dead lakeml processes on this machine left in their spools (exactly once)
        and mark their unfinished runs KILLED; returns what was recovered.

        Spools of live processes are never touched. Also waits for the recovery that
        ``connect()`` started in the background, and includes its result.
        """
        t = getattr(self, "_recovery_thread", None)
        if t is not None:
            t.join(timeout)
        report = recover(self.store, spool_root(self.config),
                         deadline=timeout if timeout is not None else self.committer.deadline, clock_us=self.clock)
        earlier = getattr(self, "_recovery_report", None)
        if earlier is not None:
            report.owners = earlier.owners + report.owners
            self._recovery_report = None
        return report

    def maintain(self, tables: str | Iterable[str] | None = None, *, dry_run: bool = False,
                 retain: str | int | float | timedelta | None = None,
                 older_than: str | int | float | timedelta = "1d", now: datetime | int | None = None,
                 compact: bool = True, expire: bool = True, orphans: bool = True,
                 progress: Progress | None = None) -> MaintenanceReport:
        """Compact, merge manifests, expire snapshots and delete orphaned files; returns a report.

        ``tables``: lakeml table names (default: all that exist). ``retain``: how far back time
        travel must reach (default: the table's ``history.expire.max-snapshot-age-ms``, 7 days),
        e.g. ``"2d"``. ``older_than``: the safety age below which an unreferenced file is kept
        (default one day; a commit in flight may be about to reference it). ``now``: the time to
        measure ages from (default: the lake's clock). ``dry_run``: report, change nothing.
        Safe while other processes keep logging.
        """
        start = time.perf_counter()
        names = [tables] if isinstance(tables, str) else (list(tables) if tables is not None else None)
        retain_ms = parse_duration_ms(retain, "retain")
        age_ms = parse_duration_ms(older_than, "older_than")
        now_ms = now_ms_from(now, self.clock)
        if self.committer.pending_rows():
            self.committer.flush()
        report = MaintenanceReport(dry_run=dry_run)
        for name in existing_tables(self.store, names):
            report.tables.append(maintain_table(
                self.store, name, now_ms=now_ms, dry_run=dry_run, retain_ms=retain_ms,
                orphan_age_ms=DEFAULT_ORPHAN_AGE_MS if age_ms is None else age_ms,
                do_compact=compact, do_expire=expire, do_orphans=orphans, progress=progress))
            if not dry_run:
                self.store.reload(name)  # this client's next commit starts from the maintained head
        report.seconds = time.perf_counter() - start
        return report
