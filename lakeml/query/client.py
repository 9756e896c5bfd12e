"""``lake.query``: SQL over the lake, run searches and metric histories, and the DuckDB engine they share.

Every lakeml table is ``lakeml.<table>``; the views of ``sql/`` (``runs_latest``,
``run_summary``, ``leaderboard``, ``metric_curves``, ``dataset_lineage``...) sit next
to them, and every other table of the same Iceberg catalog is ``<namespace>.<table>``.
See docs/sql.md.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable

from lakeml import validation as v
from lakeml.errors import InvalidInputError
from lakeml.ids import experiment_id_for

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import polars as pl
    import pyarrow as pa

    from lakeml.query.bi import BiExport
    from lakeml.query.engine import DuckEngine
    from lakeml.storage.tables import TableStore


class QueryClient:
    """Reads over the lake's tables. ``before_read`` commits this process's pending writes first."""

    def __init__(self, store: "TableStore", before_read: Callable[[], None]):
        self.store = store
        self.before_read = before_read
        self._lock = threading.Lock()
        self._engine: "DuckEngine | None" = None
        self._rw_engine: "DuckEngine | None" = None

    @property
    def engine(self) -> "DuckEngine":
        """The DuckDB engine used for reads (created on first use)."""
        if self._engine is None:
            from lakeml.query.engine import DuckEngine

            with self._lock:
                if self._engine is None:
                    self._engine = DuckEngine(self.store)
        return self._engine

    def close(self) -> None:
        """Close the DuckDB connections this client opened."""
        for eng in (self._engine, self._rw_engine):
            if eng is not None:
                eng.close()

    # -- SQL ----------------------------------------------------------------------------------
    def sql(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
            read_write: bool = False) -> "pl.DataFrame":
        """Run a SQL query over the lake; returns a polars DataFrame (``.arrow()`` gives Arrow).

        ``as_of``: a timestamp (``"2026-11-01T00:00:00Z"``, a datetime) or a snapshot id: every
        table is read as it was then. ``params``: values for ``$1``/``?`` or ``$name``.
        The session is read-only: COPY, ATTACH, INSTALL, CREATE, INSERT, SET... and any file
        outside the lake's storage are refused with :class:`~lakeml.errors.ReadOnlyError`,
        unless ``read_write=True``.
        """
        return sql_frame(self.sql_arrow(query, as_of=as_of, params=params, read_write=read_write))

    def sql_arrow(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
                  read_write: bool = False) -> "pa.Table":
        """Like :meth:`sql`, returning a pyarrow Table."""
        self.before_read()
        engine = self._read_write_engine() if read_write else self.engine
        return engine.query(query, params, as_of=as_of)

    def sql_tables(self) -> list[str]:
        """Every table and view ``lake.sql`` can name, qualified (``lakeml.runs``, ``sales.features``...)."""
        self.before_read()
        self.engine.refresh()
        return self.engine.table_names()

    def duckdb(self, *, read_write: bool = False) -> "duckdb.DuckDBPyConnection":
        """A new DuckDB connection of your own with every view of :meth:`sql`, at the current snapshots.

        It is a plain DuckDB connection (for ibis, pandas, your own tools): lakeml's statement
        check does not apply to it, but unless ``read_write=True`` DuckDB itself refuses files
        and network outside the lake's storage. Call it again to see newer data.
        """
        from lakeml.query.engine import DuckEngine

        self.before_read()
        return DuckEngine(self.store, read_write=read_write, cached=False).con

    def bi_export(self, path: str | os.PathLike, *, extension_directory: str | None = None,
                  overwrite: bool = False) -> "BiExport":
        """Write a DuckDB database file for BI tools whose views read the live tables (see docs/sql.md).

        An existing file at ``path`` is replaced only with ``overwrite=True``.
        """
        from lakeml.query.bi import export

        self.before_read()
        return export(self.store, path, extension_directory=extension_directory, overwrite=overwrite)

    def _read_write_engine(self) -> "DuckEngine":
        if self._rw_engine is None:
            from lakeml.query.engine import DuckEngine

            with self._lock:
                if self._rw_engine is None:
                    self._rw_engine = DuckEngine(self.store, read_write=True, cached=False)
        return self._rw_engine

    # -- runs and metrics -----------------------------------------------------------------------
    def search_runs(self, experiment_names: str | list[str] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, max_results: int = 1000, offset: int = 0) -> "pl.DataFrame":
        """Runs matching an MLflow-style filter, as a polars DataFrame with params.*, metrics.*, tags.* columns.

        Page with ``max_results`` and ``offset``.
        """
        from lakeml.query.runs import search_runs

        for what, n, low in (("max_results", max_results, 1), ("offset", offset, 0)):
            if isinstance(n, bool) or not isinstance(n, int) or n < low:
                raise InvalidInputError(f"{what} must be an integer >= {low}, got {n!r}")
        if isinstance(experiment_names, str):
            experiment_names = [experiment_names]
        ids = [experiment_id_for(v.validate_name(n)) for n in experiment_names] if experiment_names else None
        self.before_read()
        return search_runs(self.engine, experiment_ids=ids, filter_string=filter_string, order_by=order_by,
                           max_results=max_results, offset=offset)

    def get_metric_history(self, run_id: str, key: str | None = None) -> "pl.DataFrame":
        """Every point of metric ``key`` (or all metrics) of a run, ordered by step: key, step, value, timestamp."""
        from lakeml.query.runs import metric_history

        v.validate_run_id(run_id)
        if key is not None:
            v.validate_key(key, "metric")
        self.before_read()
        return metric_history(self.engine, run_id, key)

    def metric_histories(self, run_ids: Iterable[str], key: str | None = None) -> "pl.DataFrame":
        """The full history of many runs at once: run_id, key, step, value, timestamp, ordered by run."""
        import polars as pl

        ids = [v.validate_run_id(r) for r in run_ids]
        if key is not None:
            v.validate_key(key, "metric")
        self.before_read()
        return pl.from_arrow(self.engine.metric_histories(ids, key))


@functools.cache
def _frame_class() -> type:
    """The DataFrame subclass of query results (made on first use: polars is imported lazily)."""
    import polars as pl

    class SqlFrame(pl.DataFrame):
        """A query result: a polars DataFrame; ``.arrow()`` returns it as a pyarrow Table."""

        def arrow(self) -> "pa.Table":
            return self.to_arrow()
    return SqlFrame


def sql_frame(table: "pa.Table") -> "pl.DataFrame":
    """A polars DataFrame that also has ``.arrow()`` (the same data as a pyarrow Table)."""
    import polars as pl

    df = pl.from_arrow(table)
    try:
        return _frame_class()._from_pydf(df._df)
    except AttributeError:  # pragma: no cover - a polars without the constructor: plain DataFrame
        return df
