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
changed, which on a SQL catalog is one small query for all tables (on the embedded
SQLite catalog: read with stdlib ``sqlite3``, and only when the file changed). Unless
opened ``read_write``, the connection is locked down: no file or network access
outside the lake's storage and the configuration locked (``enable_external_access=false``
+ ``allowed_directories``).

An engine is composed of parts with explicit inputs, sharing one :class:`Session`
(the connection): :class:`CatalogLocations` (where each table is), :class:`LakeTables`
(``lakeml.<table>`` and the views of ``sql/``), :class:`Namespaces` (the catalog's other
tables), :class:`Pinning` (time travel) and :class:`MetricHistory`. Without ``cached``
(or with the property ``lakeml.read-cache=false``), no pyiceberg is needed to read and
only what a query names is bound: what a cold CLI command uses.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from lakeml.errors import NotFoundError, StorageError
from lakeml.query import guard, lockdown
from lakeml.query.attach import INTERNAL, REST_ALIAS, SCHEMA, iceberg_sql, rest_attach_sql, s3_secret_sql
from lakeml.query.binding import MATERIALIZED, UNCACHED, LakeTables, Session
from lakeml.query.cache import ident, q
from lakeml.query.extensions import new_connection
from lakeml.query.history import MetricHistory, _fetch
from lakeml.query.locations import CatalogLocations, is_rest_catalog
from lakeml.query.namespaces import Namespaces
from lakeml.query.pinning import Pinning

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.query")

READ_CACHE = "lakeml.read-cache"  # catalog property: "false" makes an engine's default plain (no copies)

__all__ = ["DuckEngine", "INTERNAL", "MATERIALIZED", "READ_CACHE", "REST_ALIAS", "SCHEMA", "UNCACHED",
           "iceberg_sql", "rest_attach_sql", "s3_secret_sql"]


def cache_default(store: "TableStore") -> bool:
    """Whether an engine over ``store`` keeps in-memory copies unless told (property ``lakeml.read-cache``)."""
    return store.config.properties.get(READ_CACHE, "true").strip().lower() not in ("false", "0", "no", "off")


class DuckEngine:
    """Owns one DuckDB connection; ``refresh()`` points the views at the newest snapshots.

    ``cached``: keep in-memory copies of the small tables and the metric summary (the
    client's engine); off, every view is a plain ``iceberg_scan`` bound when a query names
    it (sessions, exports, the CLI). Default: on, unless the lake's ``lakeml.read-cache``
    property is false. ``read_write``: skip the lock-down (file and network access, configuration).
    """

    def __init__(self, store: "TableStore", *, read_write: bool = False, cached: bool | None = None):
        self.store = store
        self.read_write = read_write
        self.cached = cache_default(store) if cached is None else cached
        self._lock = threading.RLock()
        self.session = Session()
        self.locations = CatalogLocations(store)
        self.tables = LakeTables(store, self.session, cached=self.cached)
        self.namespaces = Namespaces(store, self.session, self.tables)
        self.pinning = Pinning(self.session, self.tables, self.namespaces)
        self.history = MetricHistory(self.session, self.tables)
        self._checked: set[str] = set()  # metadata locations known to be inside the allowed folders

    @property
    def lock(self) -> threading.RLock:
        """Held while the engine runs a query; hold it to run several statements on :attr:`con` in a row."""
        return self._lock

    @property
    def skipped_views(self) -> dict[str, str]:
        """Views of ``sql/`` that could not be created, with the reason."""
        return self.tables.skipped_views

    # -- connection ---------------------------------------------------------------------------
    @property
    def con(self):
        """The DuckDB connection, with every view bound (created on first use)."""
        with self._lock:
            if self.session.con is None:
                every = self._open()
                if not self.cached:
                    self._refresh(None, every=every)
            return self.session.con

    def _open(self) -> dict | None:
        """Open the connection; the cached mode binds every table, the plain mode binds on demand.
        Returns the catalog's locations it read (None: a catalog that cannot list them)."""
        every = self._all_locations()
        rest = every is None and is_rest_catalog(self.store.catalog)
        props = self.store.config.properties
        s3 = self.store.config.s3_options()
        remote = rest or every is None or bool(s3) or any("://" in (v or "") and not v.startswith("file://")
                                         for v in list((every or {}).values()) + [self.store.config.warehouse or ""])
        con = new_connection(httpfs=remote, verified_cache=not self.read_write)
        try:
            if sql := s3_secret_sql(s3):
                con.execute(sql)
            for schema in (SCHEMA, INTERNAL):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            if rest:
                try:
                    con.execute(rest_attach_sql(props))
                except Exception as e:  # the lakeml tables still work through iceberg_scan
                    log.warning("lakeml: could not ATTACH the REST catalog in DuckDB (%s); other namespaces "
                                "will not be queryable", e)
                    rest = False
            roots = lockdown.allowed_roots(self.store, every or {}, rest=rest)
            if not self.read_write:
                lockdown.lock_down(con, roots)
        except BaseException:
            con.close()
            raise
        self.session.con, self.session.rest, self.session.roots = con, rest, roots
        self._checked.clear()
        self.tables.reset()
        self.namespaces.reset()
        if self.cached:
            self._refresh(None, first=True, every=every)
        return every

    def _allowed(self, location: str) -> bool:
        return self.read_write or lockdown.is_allowed(location, self.session.roots)

    def _all_locations(self) -> dict | None:
        try:
            return self.locations.all()
        except Exception as e:
            raise StorageError(f"cannot read the catalog {self.store.config.catalog_name!r}: {e}. "
                               "Check it with 'lakeml doctor'.") from e

    # -- binding ------------------------------------------------------------------------------
    def refresh(self, tables: list[str] | None = None) -> None:
        """Re-point the views of ``tables`` (default: every table) at their current metadata.

        ``"metric_latest"`` in ``tables`` also brings the metric summary up to date (building
        it on first use: one pass over ``metrics``).
        """
        with self._lock:
            every = None
            if self.session.con is None:
                every = self._open()
                if self.cached:
                    if tables is not None and "metric_latest" in tables:
                        self.tables.ensure_latest()
                    return
            self._refresh(None if tables is None else [t for t in tables if t != "metric_latest"]
                          + (["metrics"] if "metric_latest" in tables else []), every=every)
            if tables is not None and "metric_latest" in tables:
                self.tables.ensure_latest()

    def _refresh(self, tables: list[str] | None, first: bool = False, views: set[str] | None = None,
                 snapshots: bool = False, every: dict | None = None) -> None:
        """Bind ``tables`` (None: all, with the other namespaces and the input snapshots) at their
        current locations; plain mode then loads the views of ``sql/`` whose tables are all bound
        (only those of ``views`` when given). ``every``: the catalog's locations, just read."""
        contracts = self.store.contracts
        unknown = [t for t in (tables or []) if t not in contracts]
        if unknown:
            raise NotFoundError(f"no lakeml table {unknown[0]!r}; known tables: {', '.join(sorted(contracts))}")
        names = list(contracts) if tables is None else list(dict.fromkeys(tables))
        if every is None:
            every = self._all_locations()
        try:
            locs = self.locations.lakeml(names, every)
        except Exception as e:
            raise StorageError(f"cannot read the catalog {self.store.config.catalog_name!r}: {e}. "
                               "Check it with 'lakeml doctor'.") from e
        found = [loc for loc in list(locs.values()) + list((every or {}).values()) if loc]
        outside = [loc for loc in found if loc not in self._checked and not self._allowed(loc)]
        self._checked.update(found)
        if outside and not first:
            log.info("lakeml: a table lives outside the allowed folders (%s); reopening the DuckDB connection",
                     outside[0])
            self.close()
            again = self._open()
            if not self.cached:
                self._refresh(tables, views=views, snapshots=snapshots, every=again)
            return
        changed = False
        for n in names:
            changed |= self.tables.bind(n, locs[n])
        if tables is None or not self.cached:
            self.namespaces.bind_foreign(every or {})
        if self.cached:
            if first or changed:
                self.tables.load_views()
        else:
            self.tables.load_views(views, within=None if tables is None else set(names), reload=changed)
        if tables is None or snapshots:
            self.namespaces.bind_input_snapshots()
        if self.cached and not (first or changed):
            self.tables.pending_materialize(names)

    def _prepare(self, sql: str) -> None:
        """Bind what ``sql`` reads: cached mode everything; plain mode the tables and views it names."""
        every = None
        if self.session.con is None:
            every = self._open()
            if self.cached:
                return
        if self.cached:
            self._refresh(None)
            return
        tables, views = self.tables.wanted(sql)
        snapshots = "__snapshots" in sql
        if snapshots and tables is not None:
            tables = sorted(set(tables) | {"inputs"})
        self._refresh(tables, views=views, snapshots=snapshots, every=every)

    def needs_latest(self, sql: str) -> bool:
        """Whether ``sql`` reads the metric summary (directly or through a view of sql/)."""
        return self.tables.needs_latest(sql)

    # -- queries ------------------------------------------------------------------------------
    def arrow(self, sql: str, params: list | dict | None = None, *, tables: list[str] | None = None):
        """Run trusted ``sql`` after refreshing ``tables``; returns a pyarrow Table."""
        with self._lock:
            if self.cached:
                self.refresh(tables)
            else:
                self._prepare(sql if tables is None else f"{sql} {' '.join(tables)}")
            return _fetch(self.session.con.execute(sql, params or []))

    def polars(self, sql: str, params: list | dict | None = None, *, tables: list[str] | None = None):
        import polars as pl

        return pl.from_arrow(self.arrow(sql, params, tables=tables))

    def rows(self, sql: str, params: list | dict | None = None, *,
             tables: list[str] | None = None) -> tuple[list[str], list[tuple]]:
        """Run trusted ``sql`` like :meth:`arrow`; returns the column names and the rows as Python
        tuples (no pyarrow or polars needed). Timestamps with a time zone come back in UTC."""
        with self._lock:
            if self.cached:
                self.refresh(tables)
            else:
                self._prepare(sql if tables is None else f"{sql} {' '.join(tables)}")
            con = self.session.con
            args = literal_args(params)
            rel = _relation(con, sql, params, args)
            cols = list(rel.columns)
            tz = [i for i, t in enumerate(rel.types) if str(t) == "TIMESTAMP WITH TIME ZONE"]
            if tz:  # fetched as microseconds: DuckDB would need pytz and the session's time zone
                swap = ", ".join(f"epoch_us({ident(cols[i])}) AS {ident(cols[i])}" for i in tz)
                rel = _relation(con, f"SELECT * REPLACE ({swap}) FROM ({sql}) AS __q", params, args)
            out = rel.fetchall()
        if tz:
            out = [tuple(_utc(v) if i in tz else v for i, v in enumerate(r)) for r in out]
        return cols, out

    def query(self, sql: str, params: list | dict | None = None, *, as_of: Any = None):
        """Run a user's SQL (checked read-only unless the engine is read-write); returns a pyarrow Table."""
        import duckdb

        stmts = guard.statements(sql)
        if not self.read_write:
            guard.check_read_only(stmts)
        with self._lock:
            self._prepare(sql)
            if as_of is None and self.cached and self.needs_latest(sql):
                self.tables.ensure_latest()
            if as_of is not None:
                self.pinning.pin(as_of)
            try:
                for attempt in (0, 1):
                    try:
                        return self._run(stmts, params)
                    except duckdb.CatalogException as e:
                        if attempt == 0 and self.session.rest and "does not exist" in str(e):
                            self.namespaces.foreign.clear()
                            self.namespaces.bind_rest_namespaces()
                            continue
                        raise guard.translate(e, sql, self.table_names()) from e
                    except duckdb.Error as e:
                        raise guard.translate(e, sql, self.table_names()) from e
            finally:
                if as_of is not None:
                    self.pinning.unpin()

    def _run(self, stmts: list, params: Any):
        import pyarrow as pa

        con = self.session.con
        result = None
        for i, st in enumerate(stmts):
            last = i == len(stmts) - 1
            cur = con.execute(st.query, params if (last and params) else [])
            result = _fetch(cur) if cur.description is not None else pa.table({})
        return result

    def metric_history(self, run_id: str, key: str | None = None):
        """Every point of one run's metrics (``key`` or all) as Arrow, ordered by key, step, timestamp."""
        with self._lock:
            self.refresh(["metrics"])
            return self.history.metric_history(run_id, key)

    def metric_point_counts(self, run_id: str) -> dict[str, int]:
        """How many points each metric of one run has, by key (plain mode: no pyarrow needed)."""
        with self._lock:
            self.refresh(["metrics"])
            if self.tables.bound["metrics"].listing is not None:  # cached: the point cache answers
                counts = self.history.metric_history(run_id).column("key").value_counts()  # vectorised
                return {k.as_py(): n.as_py() for k, n in zip(counts.field("values"), counts.field("counts"))}
            rows = self.session.con.execute("SELECT key, count(*) FROM lakeml.metrics WHERE run_id = $1 "
                                            "GROUP BY key ORDER BY key", [run_id]).fetchall()
        return dict(rows)

    def metric_histories(self, run_ids: list[str], key: str | None = None):
        """The points of many runs as Arrow: ``run_id`` first, ordered by run, key, step, timestamp."""
        with self._lock:
            self.refresh(["metrics"])
            return self.history.metric_histories(run_ids, key)

    def table_names(self) -> list[str]:
        """Every table and view a query can name (qualified), internal ones left out."""
        with self._lock:
            con = self.con
            if not self.cached:
                self._refresh(None)
            rows = con.execute(
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
            if self.session.con is not None:
                self.session.con.close()
                self.session.con = None
            self.tables.reset()
            self.namespaces.reset()


def _literal(value: Any) -> str | None:
    """``value`` as a DuckDB SQL literal, or None when it is not a plain str/int/float/bool/None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) + "::DOUBLE" if value == value and abs(value) != float("inf") else f"'{value}'::DOUBLE"
    if isinstance(value, str) and "\x00" not in value:
        return q(value)
    if isinstance(value, (list, tuple)) and value:
        items = [_literal(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"
    return None


def literal_args(params: list | tuple | dict | None) -> str | None:
    """The arguments of ``EXECUTE stmt(...)`` for ``params`` as literals, or None (bind them instead).

    Binding Python values makes DuckDB import pandas (and pyarrow) when pandas is installed, about
    0.4 s; passing literals to a prepared statement keeps a cold CLI read free of both."""
    if not params:
        return None
    items = params.items() if isinstance(params, dict) else enumerate(params)
    out = []
    for key, value in items:
        lit = _literal(value)
        if lit is None:
            return None
        out.append(f"{ident(str(key))} := {lit}" if isinstance(params, dict) else lit)
    return ", ".join(out)


def _relation(con: Any, sql: str, params: Any, args: str | None) -> Any:
    """A relation of ``sql`` with ``params``: a prepared statement run with literal ``args`` when given."""
    if args is None:
        return con.sql(sql, params=params or None)
    con.execute(f"PREPARE __lakeml_rows AS {sql}")
    return con.sql(f"EXECUTE __lakeml_rows({args})")


def _utc(us: int | None) -> Any:
    """Microseconds since the epoch -> an aware UTC datetime (None stays None)."""
    if us is None:
        return None
    from datetime import datetime, timedelta, timezone

    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
