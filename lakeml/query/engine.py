"""A DuckDB connection over the lake: one view per table, the views of ``sql/``, time travel.

Layout of the DuckDB database an engine owns:

* ``lakeml.<table>``: each lakeml table at its current snapshot. The small tables
  (everything but ``metrics``) are read from in-memory copies kept current file by
  file (``lakeml/query/cache.py``); ``metrics`` is ``iceberg_scan(<metadata location>)``.
* ``lakeml.metric_latest``: latest/min/max/count per run and metric, kept as a running
  summary (same rows as its plain-SQL definition in ``sql/metric_latest.sql``), stored on
  local disk after a slow build so that the next client starts from it (``summary_store.py``).
* the views of ``sql/*.sql`` (``runs_latest``, ``run_summary``, ``leaderboard``...).
* ``<namespace>.<table>``: every other table of the same Iceberg catalog (a SQL catalog:
  a view per table; a REST catalog: DuckDB ATTACHes the catalog itself, read-only).

The views are re-pointed only when the catalog says a table's metadata location
changed, which on a SQL catalog is one small query. Unless opened ``read_write``, the
connection is locked down: no file or network access outside the lake's storage and
the configuration locked (``enable_external_access=false`` + ``allowed_directories``).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from lakeml.query import guard, locations, lockdown, summary_store
from lakeml.query.attach import INTERNAL, REST_ALIAS, SCHEMA, iceberg_sql, rest_attach_sql, s3_secret_sql
from lakeml.query.binding import _MANIFESTS, MATERIALIZED, UNCACHED, BindingMixin, _Bound  # noqa: F401
from lakeml.query.cache import LatestCache, ident, q
from lakeml.query.extensions import new_connection
from lakeml.query.history import MetricHistoryMixin, _fetch
from lakeml.query.namespaces import NamespacesMixin
from lakeml.query.pinning import PinningMixin

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.query")

__all__ = ["DuckEngine", "INTERNAL", "MATERIALIZED", "REST_ALIAS", "SCHEMA", "UNCACHED", "iceberg_sql",
           "rest_attach_sql", "s3_secret_sql"]


class DuckEngine(BindingMixin, NamespacesMixin, PinningMixin, MetricHistoryMixin):
    """Owns one DuckDB connection; ``refresh()`` points the views at the newest snapshots.

    ``cached``: keep in-memory copies of the small tables and the metric summary (the
    client's engine); off, every view is a plain ``iceberg_scan`` (sessions, exports).
    ``read_write``: skip the lock-down (file and network access, configuration).
    """

    def __init__(self, store: "TableStore", *, read_write: bool = False, cached: bool = True):
        self.store = store
        self.read_write = read_write
        self.cached = cached
        self._con: Any = None
        self._lock = threading.RLock()
        self._bound: dict[str, _Bound] = {}
        self._foreign: dict[tuple[str, str], str] = {}  # (schema, table) -> view sql
        self._roots: set[str] = set()
        self._checked: set[str] = set()  # metadata locations known to be inside the allowed folders
        self._latest: LatestCache | None = None
        self._latest_users: set[str] | None = None
        self._snap_key: Any = None
        self._view_defs: list = []
        self.skipped_views: dict[str, str] = {}
        self._empty_sql: dict[tuple[str, int | None], str] = {}
        self._rest = False

    # -- connection ---------------------------------------------------------------------------
    @property
    def con(self):
        """The DuckDB connection, with every view bound (created on first use)."""
        with self._lock:
            if self._con is None:
                self._open()
            return self._con

    def _open(self) -> None:
        cat = self.store.catalog
        self._rest = locations.is_rest_catalog(cat)
        sql_cat = locations.is_sql_catalog(cat)
        all_locs = locations.sql_catalog_locations(cat) if sql_cat else {}
        con = new_connection()
        try:
            props = self.store.config.properties
            if sql := s3_secret_sql(self.store.config.s3_options()):
                con.execute(sql)
            for schema in (SCHEMA, INTERNAL):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            if self._rest:
                try:
                    con.execute(rest_attach_sql(props))
                except Exception as e:  # the lakeml tables still work through iceberg_scan
                    log.warning("lakeml: could not ATTACH the REST catalog in DuckDB (%s); other namespaces "
                                "will not be queryable", e)
                    self._rest = False
            self._roots = lockdown.allowed_roots(self.store, all_locs, rest=self._rest)
            if not self.read_write:
                lockdown.lock_down(con, self._roots)
        except BaseException:
            con.close()
            raise
        self._con = con
        self._checked.clear()
        self._snap_key = None
        self._bound.clear()
        self._foreign.clear()
        self._latest = None
        self._refresh(None, first=True)

    def _allowed(self, location: str) -> bool:
        return self.read_write or lockdown.is_allowed(location, self._roots)

    # -- binding ------------------------------------------------------------------------------
    def refresh(self, tables: list[str] | None = None) -> None:
        """Re-point the views of ``tables`` (default: every table) at their current metadata.

        ``"metric_latest"`` in ``tables`` also brings the metric summary up to date (building
        it on first use: one pass over ``metrics``).
        """
        with self._lock:
            if self._con is None:
                self._open()
            else:
                self._refresh(None if tables is None else [t for t in tables if t != "metric_latest"]
                              + (["metrics"] if "metric_latest" in tables else []))
            if tables is not None and "metric_latest" in tables:
                self._ensure_latest()

    def _ensure_latest(self) -> None:
        if not self.cached or self._latest is not None or "metrics" not in self._bound:
            return
        b = self._bound["metrics"]
        latest = LatestCache()
        latest.create(self._con)
        summary_store.restore(self._con, latest, b.table)
        summary_store.sync(self._con, latest, b.table, b.listing)
        self._latest = latest
        self._bind_latest()

    def needs_latest(self, sql: str) -> bool:
        """Whether ``sql`` reads the metric summary (directly or through a view of sql/)."""
        if self._latest_users is None:
            users = {"metric_latest"}
            grew = True
            while grew:
                grew = False
                for d in self._view_defs:
                    short = d.name.split(".")[-1]
                    if short not in users and any(u in d.sql for u in users):
                        users.add(short)
                        grew = True
            self._latest_users = users
        return any(u in sql for u in self._latest_users)

    # -- queries ------------------------------------------------------------------------------
    def arrow(self, sql: str, params: list | dict | None = None, *, tables: list[str] | None = None):
        """Run trusted ``sql`` after refreshing ``tables``; returns a pyarrow Table."""
        with self._lock:
            self.refresh(tables)
            return _fetch(self._con.execute(sql, params or []))

    def polars(self, sql: str, params: list | dict | None = None, *, tables: list[str] | None = None):
        import polars as pl

        return pl.from_arrow(self.arrow(sql, params, tables=tables))

    def query(self, sql: str, params: list | dict | None = None, *, as_of: Any = None):
        """Run a user's SQL (checked read-only unless the engine is read-write); returns a pyarrow Table."""
        import duckdb

        stmts = guard.statements(sql)
        if not self.read_write:
            guard.check_read_only(stmts)
        with self._lock:
            self.refresh(None)
            if as_of is None and self.cached and self.needs_latest(sql):
                self._ensure_latest()
            if as_of is not None:
                self._pin(as_of)
            try:
                for attempt in (0, 1):
                    try:
                        return self._run(stmts, params)
                    except duckdb.CatalogException as e:
                        if attempt == 0 and self._rest and "does not exist" in str(e):
                            self._foreign.clear()
                            self._bind_rest_namespaces()
                            continue
                        raise guard.translate(e, sql, self.table_names()) from e
                    except duckdb.Error as e:
                        raise guard.translate(e, sql, self.table_names()) from e
            finally:
                if as_of is not None:
                    self._unpin()

    def _run(self, stmts: list, params: Any):
        import pyarrow as pa

        con = self._con
        result = None
        for i, st in enumerate(stmts):
            last = i == len(stmts) - 1
            cur = con.execute(st.query, params if (last and params) else [])
            result = _fetch(cur) if cur.description is not None else pa.table({})
        return result

    def table_names(self) -> list[str]:
        """Every table and view a query can name (qualified), internal ones left out."""
        with self._lock:
            rows = self.con.execute(
                "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        out = []
        for db, schema, name in rows:
            if schema == INTERNAL or schema == "information_schema" or schema == "pg_catalog":
                continue
            out.append(f"{db}.{schema}.{name}" if db not in ("memory", "temp") else f"{schema}.{name}")
        return sorted(set(out))

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._bound.clear()
            self._foreign.clear()
            self._latest = None
