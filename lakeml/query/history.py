"""Reading metric histories: from only the files that can hold a run, through the point cache."""

from __future__ import annotations

from typing import Any

from lakeml.query.binding import LakeTables, Session
from lakeml.query.cache import parquet_files, q
from lakeml.query.files import EMPTY, bucket_pruner, files_for
from lakeml.query.pointcache import BYTES_PER_ROW, POINTS, FilePoints, combine, index_points

_FILE_RUNS: dict[str, frozenset] = {}  # data file path -> the run ids it holds (files are immutable)
_COLUMNS = "key, step, value, timestamp"


class MetricHistory:
    """Reads runs' metric points for an engine whose ``lakeml.metrics`` is bound (the caller refreshes it).

    With the file listing of the cached mode, only the files that can hold a run are read, through
    the process-wide point cache; in plain mode it is one filtered query over ``lakeml.metrics``.
    """

    def __init__(self, session: Session, tables: LakeTables):
        self.session = session
        self.tables = tables
        self._pruner: tuple[Any, Any] | None = None  # (the metrics table, its bucket pruner)

    def metric_history(self, run_id: str, key: str | None = None):
        """Every point of one run's metrics (``key`` or all) as Arrow, ordered by key, step, timestamp."""
        plan = self.plan([run_id])
        if plan is not None:
            parts = [p for fp in plan[run_id] if (p := fp.run(run_id)) is not None and p.num_rows]
            return combine(parts, key) if parts else self._no_points()
        # literals, not parameters: DuckDB's parameter binding costs more than the query here
        where = f"run_id = {q(run_id)}" + (f" AND key = {q(key)}" if key is not None else "")
        return _fetch(self.session.con.execute(
            f"SELECT {_COLUMNS} FROM {self._source(run_id)} WHERE {where} ORDER BY key, step, timestamp"))

    def metric_histories(self, run_ids: list[str], key: str | None = None):
        """The points of many runs as Arrow: ``run_id`` first, ordered by run, key, step, timestamp."""
        import pyarrow as pa

        ids = sorted(set(run_ids))
        plan = self.plan(ids)
        if plan is None:
            where = "run_id IN (SELECT unnest($ids::VARCHAR[]))" + (" AND key = $key" if key is not None else "")
            args: dict[str, Any] = {"ids": ids} | ({"key": key} if key is not None else {})
            return _fetch(self.session.con.execute(
                f"SELECT run_id, {_COLUMNS} FROM lakeml.metrics WHERE {where} "
                "ORDER BY run_id, key, step, timestamp", args))
        out = []
        for rid in ids:
            parts = [p for fp in plan[rid] if (p := fp.run(rid)) is not None and p.num_rows]
            if parts:
                t = combine(parts, key)
                out.append(t.add_column(0, "run_id", pa.array([rid] * t.num_rows, pa.string())))
        if not out:
            empty = self._no_points()
            return empty.add_column(0, "run_id", pa.array([], pa.string()))
        return pa.concat_tables(out)

    # -- where the points are -------------------------------------------------------------------
    def _candidates(self, run_id: str) -> list[str]:
        """Paths of the live files of ``metrics`` whose partition and bounds can hold ``run_id``."""
        b = self.tables.bound["metrics"]
        if self._pruner is None or self._pruner[0] is not b.table:
            self._pruner = (b.table, bucket_pruner(b.table, "run_id"))
        pruner = self._pruner[1]
        field_id = b.table.schema().find_field("run_id").field_id
        return files_for(b.listing, field_id, run_id, pruner)

    def plan(self, run_ids: list[str]) -> dict[str, list[FilePoints]] | None:
        """Per run, the cached points of every file that can hold it; None when the cache cannot answer.

        The cache answers when the table has no delete files and every candidate file fits in it.
        """
        b = self.tables.bound["metrics"]
        if b.listing is None:  # plain mode: no file listing
            return None
        if b.table is None or b.listing is EMPTY:
            return {r: [] for r in run_ids}
        if b.listing.has_deletes or POINTS.max_bytes == 0:
            return None
        wanted = {r: self._candidates(r) for r in run_ids}
        paths = {p for ps in wanted.values() for p in ps}
        info = b.listing.files
        if not all(POINTS.fits(info[p].records) for p in paths) \
                or sum(info[p].records for p in paths) * BYTES_PER_ROW > POINTS.max_bytes // 2:
            return None
        loaded = {p: POINTS.get(p, self._load_points) for p in sorted(paths)}
        return {r: [loaded[p] for p in ps] for r, ps in wanted.items()}

    def _load_points(self, path: str) -> FilePoints:
        return index_points(_fetch(self.session.con.execute(
            f"SELECT run_id, {_COLUMNS} FROM {parquet_files([path])}")))

    def _no_points(self):
        return _fetch(self.session.con.execute(f"SELECT {_COLUMNS} FROM lakeml.metrics LIMIT 0"))

    def _source(self, run_id: str) -> str:
        """The narrowest DuckDB source that holds every point of ``run_id`` (the table has files)."""
        b = self.tables.bound["metrics"]
        if b.listing is None:
            return "lakeml.metrics"
        if b.listing.has_deletes:
            return f"iceberg_scan({q(b.location)})"
        paths = self._files_with_run(self._candidates(run_id), run_id)
        if not paths:
            return f"({self.tables.empty('metrics', b.table)})"
        return parquet_files(paths)

    def _files_with_run(self, paths: list[str], run_id: str) -> list[str]:
        """Narrow ``paths`` to the files that hold ``run_id``, from a per-file index of run ids.

        Column bounds prune little when a commit holds many runs; each candidate file's run ids
        are read once (files are immutable) and kept, so later lookups read 1-2 files.
        """
        if len(paths) <= 2:
            return paths
        unknown = [p for p in paths if p not in _FILE_RUNS]
        if unknown:
            found = dict(self.session.con.execute(
                f"SELECT file_index, list(DISTINCT run_id) FROM {parquet_files(unknown)} GROUP BY 1").fetchall())
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
