"""``lake.maintenance``: keep the tables healthy (maintain), commit dead processes' spools (recover),
make buffered rows crash-safe (sync), and the spool and automatic maintainer a committer is built with."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterable

from lakeml.errors import InvalidInputError
from lakeml.storage.drain import drains_running
from lakeml.storage.maintenance import (DEFAULT_ORPHAN_AGE_MS, AutoMaintainer, MaintenanceReport, Progress,
                                        existing_tables, maintain_table, now_ms_from, parse_duration_ms)
from lakeml.storage.recovery import RecoveryReport, recover
from lakeml.storage.spool import SPOOL_INTERVAL, Spool, has_dead_owners, spool_root

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.committer import Committer
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.health")


def committer_parts(config: "LakeConfig", store: "TableStore") -> tuple[Spool | None, AutoMaintainer | None]:
    """The spool and the automatic maintainer for a new committer (either may be off)."""
    root = spool_root(config)
    try:
        interval = max(0.01, float(config.properties.get(SPOOL_INTERVAL, 200)) / 1000)
    except ValueError:
        raise InvalidInputError(f"{SPOOL_INTERVAL}={config.properties[SPOOL_INTERVAL]!r} is not a number of "
                                "milliseconds; use e.g. 200") from None
    spool = Spool(root, interval=interval) if root is not None else None
    return spool, AutoMaintainer.from_config(store, config.properties)


class Maintenance:
    """Table health of one lake. Starts recovering dead processes' spools in the background when built."""

    def __init__(self, config: "LakeConfig", store: "TableStore", committer: "Committer", *,
                 clock: Callable[[], int]):
        self.config = config
        self.store = store
        self.committer = committer
        self.clock = clock
        self._recovery_thread: threading.Thread | None = None
        self._recovery_report: RecoveryReport | None = None
        self._start_recovery()

    def _start_recovery(self) -> None:
        root = spool_root(self.config)
        try:
            # dead spools first, then whether a drain helper (or a recovery) is on them: then reads wait for it
            if not has_dead_owners(root) or drains_running(root):
                return
        except OSError as e:  # an unreadable spool folder must not stop connect()
            log.warning("cannot look for unrecovered spools under %s: %s", root, e)
            return

        def run() -> None:
            try:
                report = recover(self.store, root, deadline=self.committer.deadline, clock_us=self.clock)
                self._recovery_report = report
                if report.rows or report.runs_killed:
                    log.warning("lakeml recovered %d rows of %d dead process(es); runs marked KILLED: %s",
                                report.rows, len(report.owners), ", ".join(report.runs_killed) or "none")
            except Exception as e:  # pragma: no cover - reported, never raised in a daemon thread
                log.warning("background spool recovery failed: %s: %s", type(e).__name__, e)

        self._recovery_thread = threading.Thread(target=run, name="lakeml-recovery", daemon=True)
        self._recovery_thread.start()

    def sync(self) -> int:
        """Make everything logged so far durable in the local spool (fsync), without waiting for
        Iceberg; returns the rows written. After it returns, a crash of this process loses none of
        them: the next lakeml process on this machine (or ``lakeml recover``) commits them.

        Raises :class:`~lakeml.errors.StorageError` when that cannot be promised: the spool is
        switched off (``lakeml.spool=off``) or writing it failed. Use :meth:`Lake.flush` then.
        """
        return self.committer.sync()

    def recover(self, *, timeout: float | None = None) -> RecoveryReport:
        """Commit what dead lakeml processes on this machine left in their spools (exactly once)
        and mark their unfinished runs KILLED; returns what was recovered.

        Spools of live processes are never touched. Also waits for the recovery that
        ``connect()`` started in the background, and includes its result.
        """
        if self._recovery_thread is not None:
            self._recovery_thread.join(timeout)
        report = recover(self.store, spool_root(self.config),
                         deadline=timeout if timeout is not None else self.committer.deadline, clock_us=self.clock)
        earlier, self._recovery_report = self._recovery_report, None
        if earlier is not None:
            report.owners = earlier.owners + report.owners
        return report

    def recover_for_read(self) -> RecoveryReport:
        """What a read does when exited processes' spools are left that nobody commits (see
        :class:`~lakeml.query.freshness.ReadYourWrites`): :meth:`recover`, its report kept for the next
        :meth:`recover` to return."""
        if self._recovery_thread is not None:
            self._recovery_thread.join()
        report = recover(self.store, spool_root(self.config), deadline=self.committer.deadline, clock_us=self.clock)
        if report.owners:
            if self._recovery_report is None:
                self._recovery_report = RecoveryReport()
            self._recovery_report.owners += report.owners
            if report.rows or report.runs_killed:
                log.warning("lakeml recovered %d rows of %d dead process(es); runs marked KILLED: %s",
                            report.rows, len(report.owners), ", ".join(report.runs_killed) or "none")
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
