"""CLI commands for table health: ``lakeml maintain`` and ``lakeml recover``."""

from __future__ import annotations

import sys
from typing import Any, List, Optional

import typer

from lakeml.cli.common import (CatalogOpt, Output, OutputOpt, WarehouseOpt, echo, emit, handle_errors, open_lake,
                               print_json)

app = typer.Typer()


class TqdmProgress:
    """Progress bars on stderr for the long steps of a maintenance pass (off when not a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._bar: Any = None

    def start(self, desc: str, total: int, unit: str = "it") -> None:
        self.done()
        if not self.enabled:
            return
        from tqdm import tqdm

        scale = unit == "B"
        self._bar = tqdm(total=total or None, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                         leave=False, file=sys.stderr)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _size(n: int) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{n} B"  # pragma: no cover


@app.command()
@handle_errors
def maintain(table: Optional[List[str]] = typer.Option(None, "--table", "-t",
                                                       help="a lakeml table to maintain (repeatable; default: all)"),
             dry_run: bool = typer.Option(False, "--dry-run", help="report what would be done, change nothing"),
             retain: Optional[str] = typer.Option(
                 None, "--retain", help="how far back time travel must reach, e.g. 7d, 36h "
                                        "[default: the table's history.expire.max-snapshot-age-ms, 7d]"),
             older_than: str = typer.Option("1d", "--older-than",
                                            help="safety age: unreferenced files younger than this are kept"),
             progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars on stderr"),
             catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
             output: Output = OutputOpt) -> None:
    """Compact small files, merge manifests, expire old snapshots and delete orphaned files.

    Safe while other processes keep logging. Prints, per table: data files before and after,
    snapshots, bytes freed and the time taken.
    """
    bars = TqdmProgress(progress and output == Output.text and sys.stderr.isatty())
    with open_lake(catalog, warehouse) as lake:
        report = lake.maintenance.maintain(table or None, dry_run=dry_run, retain=retain, older_than=older_than, progress=bars)
    bars.done()
    if output == Output.json:
        print_json(report.as_dict())
        return
    rows = [{"table": t.table, "files": f"{t.files_before} -> {t.files_after}",
             "max/partition": f"{t.max_files_per_partition_before} -> {t.max_files_per_partition_after}",
             "snapshots": f"{t.snapshots_before} -> {t.snapshots_after}",
             "manifests": f"{t.manifests_before} -> {t.manifests_after}",
             "orphans deleted": t.orphans_deleted, "bytes freed": _size(t.bytes_freed),
             "seconds": f"{t.seconds:.2f}"} for t in report.tables]
    if dry_run:
        echo("dry run: nothing was changed; this is what maintain would do")
    emit(rows, output)
    echo(f"{len(report.tables)} table(s): data files {report.files_before} -> {report.files_after}, "
               f"{_size(report.bytes_freed)} freed, {report.seconds:.2f}s")


@app.command()
@handle_errors
def recover(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
            output: Output = OutputOpt) -> None:
    """Commit what killed lakeml processes on this machine left in their local spool (exactly once)
    and mark their unfinished runs KILLED. Spools of running processes are left alone."""
    with open_lake(catalog, warehouse) as lake:
        report = lake.maintenance.recover()
    if output == Output.json:
        print_json(report.as_dict())
        return
    if not report.owners:
        echo("nothing to recover: no spool of a dead lakeml process on this machine")
        return
    emit([{"process": f"{o.host}:{o.pid}", "batches": o.batches, "rows": o.rows,
           "already committed": o.already_committed, "runs killed": ", ".join(o.runs_killed) or "-",
           "error": o.error or ""} for o in report.owners], output)
    echo(f"recovered {report.rows} rows in {report.batches} batches; "
               f"{len(report.runs_killed)} run(s) marked KILLED ({report.seconds:.2f}s)")
