"""Reading append-only event tables (``registry_events``, ``project_events``) incrementally.

A ledger folds its events into a state and keeps it with the data files it came from; the next read
scans only the files added since. When files were rewritten or deleted (compaction), it folds again
from scratch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeml.errors import StorageError

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table


class OutcomeUnknown(Exception):
    """An append failed in a way that leaves its outcome unknown (its batch id is looked up next)."""


def new_event_rows(tbl: "Table", known: frozenset[str]) -> tuple[frozenset[str], bool, list[dict[str, Any]]]:
    """``(files, incremental, rows)``: the table's data files now; whether ``rows`` are only those of the
    files not in ``known`` (False: every row, fold from scratch); the rows, by ``event_seq``."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    try:
        tasks = list(tbl.scan().plan_files())
    except Exception as e:
        raise StorageError(f"cannot read {tbl.name()}: {type(e).__name__}: {e}") from e
    files = frozenset(t.file.file_path for t in tasks)
    incremental = known <= files and not any(t.delete_files for t in tasks)
    todo = [t for t in tasks if t.file.file_path not in known] if incremental else tasks
    if not todo:
        return files, incremental, []
    try:
        data = ArrowScan(tbl.metadata, tbl.io, tbl.schema(), AlwaysTrue()).to_table(todo)
    except Exception as e:
        raise StorageError(f"cannot read {tbl.name()}: {type(e).__name__}: {e}") from e
    return files, incremental, data.sort_by("event_seq").to_pylist()
