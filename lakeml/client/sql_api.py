"""SQL over the lake from the client: ``lake.sql(...)`` and friends.

Every lakeml table is ``lakeml.<table>``; the views of ``sql/`` (``runs_latest``,
``run_summary``, ``leaderboard``, ``metric_curves``, ``dataset_lineage``...) sit next
to them, and every other table of the same Iceberg catalog is ``<namespace>.<table>``.
See docs/sql.md.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Iterable

from lakeml import validation as v

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import polars as pl
    import pyarrow as pa

    from lakeml.query.bi import BiExport


class SqlMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` that run SQL."""

    def sql(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
            read_write: bool = False) -> "pl.DataFrame":
        """Run a SQL query over the lake; returns a polars DataFrame (``.arrow()`` gives Arrow).

        ``as_of``: a timestamp (``"2026-11-01T00:00:00Z"``, a datetime) or a snapshot id: every
        table is read as it was then. ``params``: values for ``$1``/``?`` or ``$name``.
        The session is read-only: COPY, ATTACH, INSTALL, CREATE, INSERT, SET... and any file
        outside the lake's storage are refused with :class:`~lakeml.errors.ReadOnlyError`,
        unless ``read_write=True``.
        """
        return _sql_frame(self.sql_arrow(query, as_of=as_of, params=params, read_write=read_write))

    def sql_arrow(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
                  read_write: bool = False) -> "pa.Table":
        """Like :meth:`sql`, returning a pyarrow Table."""
        self._read_ready()
        engine = self._rw_engine() if read_write else self.engine
        return engine.query(query, params, as_of=as_of)

    def sql_tables(self) -> list[str]:
        """Every table and view ``lake.sql`` can name, qualified (``lakeml.runs``, ``sales.features``...)."""
        self._read_ready()
        self.engine.refresh()
        return self.engine.table_names()

    def metric_histories(self, run_ids: Iterable[str], key: str | None = None) -> "pl.DataFrame":
        """The full history of many runs at once: run_id, key, step, value, timestamp, ordered by run."""
        import polars as pl

        ids = [v.validate_run_id(r) for r in run_ids]
        if key is not None:
            v.validate_key(key, "metric")
        self._read_ready()
        return pl.from_arrow(self.engine.metric_histories(ids, key))

    def duckdb(self, *, read_write: bool = False) -> "duckdb.DuckDBPyConnection":
        """A new DuckDB connection of your own with every view of :meth:`sql`, at the current snapshots.

        It is a plain DuckDB connection (for ibis, pandas, your own tools): lakeml's statement
        check does not apply to it, but unless ``read_write=True`` DuckDB itself refuses files
        and network outside the lake's storage. Call it again to see newer data.
        """
        from lakeml.query.engine import DuckEngine

        self._read_ready()
        eng = DuckEngine(self.store, read_write=read_write, cached=False)
        return eng.con

    def bi_export(self, path: str | os.PathLike, *, extension_directory: str | None = None) -> "BiExport":
        """Write a DuckDB database file for BI tools whose views read the live tables (see docs/sql.md)."""
        from lakeml.query.bi import export

        self._read_ready()
        return export(self.store, path, extension_directory=extension_directory)

    def _rw_engine(self):
        eng = getattr(self, "_sql_rw_engine", None)
        if eng is None:
            from lakeml.query.engine import DuckEngine

            eng = self._sql_rw_engine = DuckEngine(self.store, read_write=True, cached=False)
        return eng


@functools.cache
def _frame_class() -> type:
    """The DataFrame subclass of query results (made on first use: polars is imported lazily)."""
    import polars as pl

    class SqlFrame(pl.DataFrame):
        """A query result: a polars DataFrame; ``.arrow()`` returns it as a pyarrow Table."""

        def arrow(self) -> "pa.Table":
            return self.to_arrow()
    return SqlFrame


def _sql_frame(table: "pa.Table") -> "pl.DataFrame":
    """A polars DataFrame that also has ``.arrow()`` (the same data as a pyarrow Table)."""
    import polars as pl

    df = pl.from_arrow(table)
    try:
        return _frame_class()._from_pydf(df._df)
    except AttributeError:  # pragma: no cover - a polars without the constructor: plain DataFrame
        return df
