"""In-memory DuckDB copies of the small lakeml tables and a running per-metric summary.

Both are kept current incrementally: lakeml tables only grow by appends, so a
new snapshot usually means a few new data files, and only those are read. A
file that disappeared (compaction, an overwrite) or a delete file written by
another engine makes the copy rebuild itself from the table. Every copy holds
exactly the rows ``iceberg_scan`` of the same snapshot returns.
"""

from __future__ import annotations

from typing import Any

from lakeml.query.files import Listing, appended_since

SCHEMA = "__lakeml"  # DuckDB schema of the caches (internal; readable, never written by users)

# One row per (run_id, key): the latest point (by step, then timestamp, then value, as MLflow)
# plus min, max and count. The same definition is in sql/metric_latest.sql; the merge below
# combines two such summaries into one, which is what makes the summary incremental.
LATEST_COLUMNS = ("run_id VARCHAR, key VARCHAR, value DOUBLE, step BIGINT, timestamp TIMESTAMP WITH TIME ZONE, "
                  "min_value DOUBLE, max_value DOUBLE, count BIGINT")
# max() of a struct compares field by field: the latest point by step, then timestamp, then value.
_SUMMARY = """
  SELECT run_id, key, l.value::DOUBLE AS value, l.step::BIGINT AS step, l.timestamp AS timestamp,
         min_value::DOUBLE AS min_value, max_value::DOUBLE AS max_value, count::BIGINT AS count
  FROM (SELECT run_id, key, max(struct_pack(step, timestamp, value)) AS l, {aggs}
        FROM {{src}} GROUP BY run_id, key)"""
LATEST_FROM_POINTS = _SUMMARY.format(aggs="min(value) AS min_value, max(value) AS max_value, count(*) AS count")
_MERGE = _SUMMARY.format(aggs="min(min_value) AS min_value, max(max_value) AS max_value, sum(count) AS count")


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def parquet_source(paths_param: str = "$paths") -> str:
    return f"read_parquet({paths_param}, union_by_name = true, hive_partitioning = false)"


def parquet_files(paths: list[str]) -> str:
    """``read_parquet`` over exactly ``paths`` (a DuckDB table function call)."""
    return _bind_paths(parquet_source(), paths)


def _bind_paths(sql: str, paths: list[str]) -> str:
    """Inline a list of paths (table function arguments cannot be prepared parameters everywhere)."""
    return sql.replace("$paths", "[" + ", ".join(q(p) for p in paths) + "]")


class _FileTracked:
    """Common bookkeeping: which data files are already in the cache."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.exact = False  # the cache mirrors ``files``; False before the first load or after a full scan
        self.schema_id: int | None = -1
        self._next = 0

    def _plan(self, listing: Listing, schema_id: int | None) -> tuple[bool, list[str], list[int]]:
        """(rebuild?, added paths, removed file numbers)."""
        if listing.has_deletes or not self.exact or schema_id != self.schema_id:
            return True, list(listing.files), []
        added = [p for p in listing.files if p not in self.files]
        removed = [n for p, n in self.files.items() if p not in listing.files]
        return False, added, removed

    def _number(self, paths: list[str]) -> list[tuple[str, int]]:
        out = []
        for p in paths:
            self.files[p] = self._next
            out.append((p, self._next))
            self._next += 1
        return out


class TableCache(_FileTracked):
    """An in-memory copy of one lakeml table (``__lakeml.<name>``)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.table = ident(SCHEMA, name)
        self.columns: list[tuple[str, str]] = []

    def select_sql(self) -> str:
        return "SELECT " + ", ".join(ident(c) for c, _ in self.columns) + f" FROM {self.table}"

    def sync(self, con: Any, tbl: Any, listing: Listing, empty_arrow: Any) -> tuple[bool, list[int] | None]:
        """Bring the copy to ``listing`` (the files of ``tbl``'s current snapshot).

        Returns (columns changed?, numbers of the files added, or None when the copy was rebuilt).
        """
        schema_id = tbl.schema().schema_id if tbl is not None else None
        rebuild, added, removed = self._plan(listing, schema_id)
        changed = False
        before = self._next
        con.execute("BEGIN")
        try:
            if rebuild:
                changed = self._create(con, empty_arrow)
                self.files.clear()
                self.schema_id = schema_id
                if listing.has_deletes:
                    con.execute(f"INSERT INTO {self.table} SELECT *, -1 FROM iceberg_scan({q(tbl.metadata_location)})")
                    self.exact = False
                else:
                    self._add(con, added)
                    self.exact = True
            else:
                if removed:
                    con.execute(f"DELETE FROM {self.table} WHERE __lakeml_file IN (SELECT unnest($1::INTEGER[]))",
                                [removed])
                    for p in [p for p, n in self.files.items() if n in set(removed)]:
                        del self.files[p]
                self._add(con, added)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.exact = False
            raise
        return changed, (None if rebuild or removed else list(range(before, self._next)))

    def _create(self, con: Any, empty_arrow: Any) -> bool:
        con.register("__lakeml_empty", empty_arrow)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {self.table} AS "
                        "SELECT *, NULL::INTEGER AS __lakeml_file FROM __lakeml_empty LIMIT 0")
        finally:
            con.unregister("__lakeml_empty")
        cols = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {self.table}").fetchall() if r[0] != "__lakeml_file"]
        changed = cols != self.columns
        self.columns = cols
        return changed

    def _add(self, con: Any, paths: list[str]) -> None:
        if not paths:
            return
        numbers = [n for _, n in self._number(paths)]
        present = {r[0] for r in con.execute(
            _bind_paths(f"DESCRIBE SELECT * FROM {parquet_source()}", paths)).fetchall()}
        cols = ", ".join(f"CAST({ident(c)} AS {t})" if c in present else f"NULL::{t}" for c, t in self.columns)
        con.execute(_bind_paths(
            f"INSERT INTO {self.table} SELECT {cols}, {numbers}[file_index::BIGINT + 1] FROM {parquet_source()}", paths))


class LatestCache(_FileTracked):
    """The per-(run, metric) summary of ``lakeml.metrics`` (``__lakeml.metric_latest``), merged file by file."""

    table = ident(SCHEMA, "metric_latest")

    def create(self, con: Any) -> None:
        con.execute(f"CREATE OR REPLACE TABLE {self.table} ({LATEST_COLUMNS})")

    snapshot_id: int | None = None  # the snapshot of ``metrics`` the summary is exact for

    def sync(self, con: Any, tbl: Any, listing: Listing) -> None:
        """Bring the summary to ``listing``: merge appended files; after a compaction merge the
        files appended since the last sync (see :func:`~lakeml.query.files.appended_since`);
        rebuild from every point only when rows were deleted or the history is gone."""
        schema_id = tbl.schema().schema_id if tbl is not None else None
        snap = tbl.current_snapshot() if tbl is not None else None
        rebuild, added, removed = self._plan(listing, schema_id)
        relist = False
        if removed:
            try:
                appended = appended_since(tbl, self.snapshot_id)
            except Exception:  # an unreadable manifest: fall back to a rebuild
                appended = None
            if appended is None:
                rebuild, added = True, list(listing.files)
            else:
                added, relist = [p for p in appended if p not in self.files], True
        con.execute("BEGIN")
        try:
            if rebuild:
                self.create(con)
                self.files.clear()
                self.schema_id = schema_id
                if listing.has_deletes:
                    src = f"iceberg_scan({q(tbl.metadata_location)})"
                    con.execute(f"INSERT INTO {self.table} {LATEST_FROM_POINTS.format(src=src)}")
                    self.exact = False
                    con.execute("COMMIT")
                    return
                self.exact = True
            if added:
                self._merge(con, added, fresh=rebuild)
            if relist:
                self.files.clear()
                self._number(list(listing.files))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.exact = False
            raise
        self.snapshot_id = snap.snapshot_id if snap is not None else None

    def _merge(self, con: Any, paths: list[str], *, fresh: bool) -> None:
        self._number(paths)
        part = _bind_paths(LATEST_FROM_POINTS.format(src=parquet_source()), paths)
        if fresh:
            con.execute(f"INSERT INTO {self.table} {part}")
            return
        con.execute(f"CREATE OR REPLACE TEMP TABLE __lakeml_new AS {part}")
        old = f"(SELECT m.* FROM {self.table} m SEMI JOIN __lakeml_new n USING (run_id, key))"
        both = f"({old} UNION ALL BY NAME SELECT * FROM __lakeml_new)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE __lakeml_comb AS {_MERGE.format(src=both)}")
        con.execute(f"DELETE FROM {self.table} t USING __lakeml_new n WHERE t.run_id = n.run_id AND t.key = n.key")
        con.execute(f"INSERT INTO {self.table} BY NAME SELECT * FROM __lakeml_comb")
        con.execute("DROP TABLE __lakeml_new; DROP TABLE __lakeml_comb")
