"""Reading results: one run's metric history from only the files that can hold it, DuckDB results as Arrow."""

from __future__ import annotations

from typing import Any

from lakeml.query.cache import parquet_source, q
from lakeml.query.files import EMPTY, bucket_pruner, files_for

_FILE_RUNS: dict[str, frozenset] = {}  # data file path -> the run ids it holds (files are immutable)


class MetricHistoryMixin:
    """The part of :class:`~lakeml.query.engine.DuckEngine` that reads one run's metric points."""

    def metric_history(self, run_id: str, key: str | None = None):
        """Every point of one run's metrics (``key`` or all) as Arrow, reading only the files that can hold it."""
        # literals, not parameters: DuckDB's parameter binding costs more than the query here
        where = f"run_id = {q(run_id)}" + (f" AND key = {q(key)}" if key is not None else "")
        with self._lock:
            self.refresh(["metrics"])
            b = self._bound["metrics"]
            if b.table is None or b.listing is EMPTY:
                src = f"({b.view_sql})"
            elif b.listing.has_deletes:
                src = f"iceberg_scan({q(b.location)})"
            else:
                pruner = getattr(b, "_pruner", None)
                if pruner is None or getattr(b, "_pruner_for", None) is not b.table:
                    b._pruner, b._pruner_for = bucket_pruner(b.table, "run_id"), b.table
                    pruner = b._pruner
                field_id = b.table.schema().find_field("run_id").field_id
                paths = self._files_with_run(files_for(b.listing, field_id, run_id, pruner), run_id)
                if not paths:
                    src = f"({self._empty('metrics', b.table)})"
                else:
                    src = parquet_source().replace("$paths", "[" + ", ".join(q(p) for p in paths) + "]")
            return _fetch(self._con.execute(
                f"SELECT key, step, value, timestamp FROM {src} WHERE {where} ORDER BY key, step, timestamp"))

    def _files_with_run(self, paths: list[str], run_id: str) -> list[str]:
        """Narrow ``paths`` to the files that hold ``run_id``, from a per-file index of run ids.

        Column bounds prune little when a commit holds many runs; each candidate file's run ids
        are read once (files are immutable) and kept, so later lookups read 1-2 files.
        """
        if len(paths) <= 2:
            return paths
        unknown = [p for p in paths if p not in _FILE_RUNS]
        if unknown:
            src = parquet_source().replace("$paths", "[" + ", ".join(q(p) for p in unknown) + "]")
            found = dict(self._con.execute(
                f"SELECT file_index, list(DISTINCT run_id) FROM {src} GROUP BY 1").fetchall())
            if len(_FILE_RUNS) + len(unknown) > 200_000:
                _FILE_RUNS.clear()
            for i, p in enumerate(unknown):
                _FILE_RUNS[p] = frozenset(found.get(i) or ())
        return [p for p in paths if run_id in _FILE_RUNS.get(p, (run_id,))]


def _fetch(cur: Any):
    try:
        return cur.to_arrow_table()
    except AttributeError:  # pragma: no cover - older duckdb
        return cur.fetch_arrow_table()
