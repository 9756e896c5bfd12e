"""A DuckDB connection over the lake: one view per table, the views of ``sql/``, time travel.

Layout of the DuckDB database an engine owns:

* ``lakeml.<table>``: each lakeml table at its current snapshot. The small tables
  (everything but ``metrics``) are read from in-memory copies kept current file by
  file (``lakeml/query/cache.py``); ``metrics`` is ``iceberg_scan(<metadata location>)``.
* ``lakeml.metric_latest``: latest/min/max/count per run and metric, kept as a running
  summary (same rows as its plain-SQL definition in ``sql/metric_latest.sql``).
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
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lakeml.errors import NotFoundError, StorageError
from lakeml.query import guard, locations, timetravel
from lakeml.query.cache import LatestCache, TableCache, ident, parquet_source, q
from lakeml.query.extensions import new_connection
from lakeml.query.files import EMPTY, ManifestCache, bucket_pruner, files_for

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.query")

SCHEMA = "lakeml"  # the DuckDB schema of the lakeml views, whatever the Iceberg namespace
INTERNAL = "__lakeml"
REST_ALIAS = "lakeml_catalog"  # the attached REST catalog
UNCACHED = {"metrics"}  # tables too large to copy into memory
# Views of sql/ that the client's engine materializes and refreshes by key as their table grows.
MATERIALIZED = {"lakeml.runs_latest": ("runs", "run_id"), "lakeml.params_latest": ("params", "run_id"),
                "lakeml.tags_latest": ("tags", "run_id"), "lakeml.experiments_latest": ("experiments", "experiment_id")}
_MANIFESTS = ManifestCache()
_FILE_RUNS: dict[str, frozenset] = {}  # data file path -> the run ids it holds (files are immutable)


def s3_secret_sql(props: dict[str, str], name: str = "lakeml_s3") -> str | None:
    """``CREATE SECRET`` for DuckDB from pyiceberg's s3.* keys (None when there are none)."""
    if not any(k.startswith("s3.") for k in props):
        return None

    parts = ["TYPE s3", f"REGION {q(props.get('s3.region', 'us-east-1'))}"]
    if key := props.get("s3.access-key-id"):
        parts += [f"KEY_ID {q(key)}", f"SECRET {q(props.get('s3.secret-access-key', ''))}"]
    if tok := props.get("s3.session-token"):
        parts.append(f"SESSION_TOKEN {q(tok)}")
    if ep := props.get("s3.endpoint"):
        u = urlparse(ep if "://" in ep else f"http://{ep}")
        parts += [f"ENDPOINT {q(u.netloc)}", f"USE_SSL {'true' if u.scheme == 'https' else 'false'}"]
    style = str(props.get("s3.path-style-access", "true")).lower()
    parts.append(f"URL_STYLE {q('vhost' if style in ('false', '0', 'no') else 'path')}")
    return f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})"


def rest_attach_sql(props: dict[str, str], alias: str = REST_ALIAS) -> str:
    """``ATTACH`` of a pyiceberg REST catalog profile in DuckDB, read-only."""
    warehouse = props.get("prefix") or props.get("warehouse", "")
    opts = ["TYPE iceberg", f"ENDPOINT {q(props['uri'].rstrip('/'))}", "READ_ONLY"]
    if cred := props.get("credential"):
        cid, _, secret = cred.partition(":")
        opts += [f"CLIENT_ID {q(cid)}", f"CLIENT_SECRET {q(secret)}"]
        if oauth := props.get("oauth2-server-uri"):
            opts.append(f"OAUTH2_SERVER_URI {q(oauth)}")
    elif tok := props.get("token"):
        opts.append(f"TOKEN {q(tok)}")
    else:
        opts.append("AUTHORIZATION_TYPE 'none'")
    return f"ATTACH {q(warehouse)} AS {ident(alias)} ({', '.join(opts)})"


def iceberg_sql(location: str, snapshot_id: int | None = None) -> str:
    snap = f", snapshot_from_id = {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"SELECT * FROM iceberg_scan({q(location)}{snap})"


def _root(location: str) -> str:
    """The folder DuckDB may read for a table or warehouse location (a bucket for object stores)."""
    u = urlparse(location)
    if u.scheme in ("", "file"):
        path = u.path if u.scheme else location
        return path.rstrip("/") + "/"
    return f"{u.scheme}://{u.netloc}/"


@dataclass
class _Bound:
    """What one view points at."""

    location: str | None = None
    table: Any = None  # the pyiceberg Table, or None while the table does not exist
    listing: Any = EMPTY
    schema_id: int | None = -1
    view_sql: str = ""
    cache: Any = None
    added: list | None = field(default_factory=list)  # file numbers not yet in the materialized views


class DuckEngine:
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
            self._roots = self._allowed_roots(all_locs)
            if not self.read_write:
                tmp = os.path.join(tempfile.gettempdir(), f"lakeml-duckdb-{os.getpid()}")
                con.execute(f"SET temp_directory = {q(tmp)}")
                con.execute("SET parquet_metadata_cache = true")
                dirs = sorted(self._roots | {tmp.rstrip('/') + '/'})
                con.execute(f"SET allowed_directories = [{', '.join(q(d) for d in dirs)}]")
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
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

    def _allowed_roots(self, all_locs: dict) -> set[str]:
        cfg = self.store.config
        roots = set()
        if cfg.warehouse_dir:
            roots.add(_root(cfg.warehouse_dir))
        wh = cfg.warehouse or ""
        if "://" in wh or wh.startswith("/"):
            roots.add(_root(wh))
        for loc in all_locs.values():
            if loc:
                roots.add(_root(locations.table_dir(loc)))
        if self._rest or not roots:
            for name in self.store.contracts:
                try:
                    roots.add(_root(self.store.catalog.load_table(self.store.identifier(name)).location()))
                except Exception:
                    continue
        return {r for r in roots if not any(r != o and r.startswith(o) for o in roots)}

    def _allowed(self, location: str) -> bool:
        if self.read_write:
            return True
        root = _root(locations.table_dir(location))
        return any(root.startswith(r) for r in self._roots)

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
        latest.sync(self._con, b.table, b.listing)
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

    def _refresh(self, tables: list[str] | None, first: bool = False) -> None:
        cat = self.store.catalog
        names = list(self.store.contracts) if tables is None else [t for t in tables if t in self.store.contracts]
        unknown = [t for t in (tables or []) if t not in self.store.contracts]
        if unknown:
            raise NotFoundError(f"no lakeml table {unknown[0]!r}; known tables: "
                                f"{', '.join(sorted(self.store.contracts))}")
        all_locs: dict = {}
        try:
            if locations.is_sql_catalog(cat):
                all_locs = locations.sql_catalog_locations(cat)
                locs = {n: all_locs.get((self.store.namespace, n)) for n in names}
            else:
                locs = locations.lakeml_locations(self.store, names)
        except Exception as e:
            raise StorageError(f"cannot read the catalog {self.store.config.catalog_name!r}: {e}. "
                               "Check it with 'lakeml doctor'.") from e
        outside = [loc for loc in list(locs.values()) + list(all_locs.values())
                   if loc and loc not in self._checked and not self._allowed(loc)]
        self._checked.update(v for v in all_locs.values() if v)
        self._checked.update(v for v in locs.values() if v)
        if outside and not first:
            log.info("lakeml: a table lives outside the allowed folders (%s); reopening the DuckDB connection",
                     outside[0])
            self.close()
            self._open()
            return
        changed = False
        for n in names:
            changed |= self._bind(n, locs[n])
        if tables is None:
            self._bind_foreign(all_locs)
        if first or changed:
            self._load_views()
        if tables is None:
            self._bind_input_snapshots()
        if not (first or changed):
            for n in names:
                if self._bound[n].added != []:
                    self._materialize(n)

    def _materialize(self, table: str | None = None) -> None:
        """Bring the materialized views of ``table`` (default: all) up to date with its copy."""
        if not self.cached:
            return
        con = self._con
        for view, (base, key) in MATERIALIZED.items():
            b = self._bound.get(base)
            if (table is not None and base != table) or b is None or b.cache is None or view in self.skipped_views:
                continue
            short = view.split(".")[-1]
            mat, dfn = ident(INTERNAL, f"mat_{short}"), ident(INTERNAL, f"def_{short}")
            con.execute("BEGIN")
            try:
                if table is None or b.added is None:
                    con.execute(f"CREATE OR REPLACE TABLE {mat} AS SELECT * FROM {dfn}")
                elif b.added:
                    keys = f"(SELECT DISTINCT {ident(key)} FROM {b.cache.table} WHERE __lakeml_file IN " \
                           f"(SELECT unnest({[int(n) for n in b.added]}::INTEGER[])))"
                    con.execute(f"CREATE OR REPLACE TEMP TABLE __lakeml_keys AS {keys}")
                    con.execute(f"DELETE FROM {mat} WHERE {ident(key)} IN (SELECT * FROM __lakeml_keys)")
                    con.execute(f"INSERT INTO {mat} SELECT * FROM {dfn} "
                                f"WHERE {ident(key)} IN (SELECT * FROM __lakeml_keys)")
                    con.execute("DROP TABLE __lakeml_keys")
                con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {mat}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        for name in ([table] if table else list(self._bound)):
            if name in self._bound:
                self._bound[name].added = []

    def _table(self, name: str, loc: str | None) -> Any:
        if loc is None:
            return None
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.store.catalog.load_table(self.store.identifier(name))
        except NoSuchTableError:
            return None
        except Exception as e:
            raise StorageError(f"cannot load table {self.store.identifier(name)}: {e}") from e

    def _bind(self, name: str, loc: str | None) -> bool:
        """Point ``lakeml.<name>`` at ``loc``; True if its columns changed (views must reload)."""
        b = self._bound.get(name)
        if b is not None and b.location == loc and b.view_sql:
            return False
        b = b or _Bound()
        tbl = self._table(name, loc)
        loc = tbl.metadata_location if tbl is not None else None
        if tbl is not None and tbl.current_snapshot() is None:
            listing = EMPTY
        else:
            listing = _MANIFESTS.listing(tbl) if tbl is not None else EMPTY
        schema_id = tbl.schema().schema_id if tbl is not None else None
        columns_changed = schema_id != b.schema_id
        con = self._con
        if self.cached and name not in UNCACHED:
            if b.cache is None:
                b.cache = TableCache(name)
            _, added = b.cache.sync(con, tbl, listing, self._empty_arrow(name, tbl))
            b.added = None if (added is None or b.added is None) else b.added + added
            view = b.cache.select_sql()
        elif tbl is not None and tbl.current_snapshot() is not None:
            view = iceberg_sql(loc)
        else:
            view = self._empty(name, tbl)
        con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {view}")
        if name == "metrics" and self.cached:
            if self._latest is not None:  # built on first need (see _ensure_latest), then kept current
                self._latest.sync(con, tbl, listing)
        b.location, b.table, b.listing, b.schema_id, b.view_sql = loc, tbl, listing, schema_id, view
        self._bound[name] = b
        return columns_changed

    def _empty_arrow(self, name: str, tbl: Any):
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        schema = tbl.schema() if tbl is not None else self.store.contracts[name].schema()
        return schema_to_pyarrow(schema, include_field_ids=False).empty_table()

    def _empty(self, name: str, tbl: Any) -> str:
        """A typed, empty ``SELECT`` for a table without data (persistable: no registered objects)."""
        key = (name, tbl.schema().schema_id if tbl is not None else None)
        if key not in self._empty_sql:
            con = self._con
            con.register("__lakeml_empty", self._empty_arrow(name, tbl))
            try:
                cols = con.execute("DESCRIBE SELECT * FROM __lakeml_empty").fetchall()
            finally:
                con.unregister("__lakeml_empty")
            self._empty_sql[key] = "SELECT " + ", ".join(f"NULL::{t} AS {ident(c)}" for c, t, *_ in cols) + " LIMIT 0"
        return self._empty_sql[key]

    def _bind_foreign(self, all_locs: dict) -> None:
        """Views ``<namespace>.<table>`` for every other table of a SQL catalog; REST: the attached catalog."""
        con = self._con
        if self._rest:
            if not self._foreign:
                self._bind_rest_namespaces()
            return
        seen = set()
        for (ns, tname), loc in all_locs.items():
            if not loc:
                continue
            if ns == self.store.namespace:
                if tname in self.store.contracts:
                    continue
                schema = SCHEMA
            elif ns in (SCHEMA, INTERNAL, "main", "information_schema", "pg_catalog"):
                log.info("lakeml: namespace %r clashes with a DuckDB schema; its tables are not mapped", ns)
                continue
            else:
                schema = ns
            key = (schema, tname)
            seen.add(key)
            view = iceberg_sql(loc)
            if self._foreign.get(key) == view:
                continue
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
                con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {view}")
                self._foreign[key] = view
            except Exception as e:  # a table other engines broke must not break lakeml
                log.warning("lakeml: cannot map table %s.%s: %s", ns, tname, e)
        for key in [k for k in self._foreign if k not in seen]:
            con.execute(f"DROP VIEW IF EXISTS {ident(*key)}")
            del self._foreign[key]

    def _bind_input_snapshots(self) -> None:
        """``<ns>.<table>__snapshots``: the rows of every snapshot of a table that some run logged as input.

        One view per table read by runs, with a leading ``snapshot_id`` column, so one query can
        compare what two runs saw (``JOIN lakeml.dataset_lineage USING (snapshot_id)``).
        """
        con = self._con
        inputs = self._bound.get("inputs")
        key = (inputs.location if inputs else None, tuple(sorted(self._foreign.items())))
        if key == self._snap_key or inputs is None or inputs.location is None:
            return
        self._snap_key = key
        rows = con.execute("SELECT DISTINCT table_identifier, snapshot_id FROM lakeml.inputs WHERE kind = 'iceberg' "
                           "AND table_identifier IS NOT NULL AND snapshot_id IS NOT NULL ORDER BY ALL").fetchall()
        by_table: dict[str, list[int]] = {}
        for t, sid in rows:
            by_table.setdefault(t, []).append(sid)
        for table_id, sids in by_table.items():
            ns, _, tname = table_id.rpartition(".")
            schema = SCHEMA if ns == self.store.namespace else ns
            if (schema, tname) not in self._foreign or (schema == SCHEMA and tname in self.store.contracts):
                continue
            try:
                tbl = self.store.catalog.load_table(table_id)
                live = [sid for sid in sids if tbl.snapshot_by_id(sid) is not None]
                if not live:
                    continue
                if self._rest:
                    parts = [f"SELECT {sid}::BIGINT AS snapshot_id, * FROM {ident(REST_ALIAS, ns, tname)} "
                             f"AT (VERSION => {sid})" for sid in live]
                else:
                    parts = [f"SELECT {sid}::BIGINT AS snapshot_id, * FROM "
                             f"iceberg_scan({q(tbl.metadata_location)}, snapshot_from_id = {sid})" for sid in live]
                con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname + '__snapshots')} AS "
                            + " UNION ALL BY NAME ".join(parts))
            except Exception as e:  # lineage views are a convenience; never break a query over them
                log.warning("lakeml: cannot map the input snapshots of %s: %s", table_id, e)

    def _bind_rest_namespaces(self) -> None:
        cat, con = self.store.catalog, self._con
        try:
            namespaces = cat.list_namespaces()
        except Exception as e:
            log.warning("lakeml: cannot list the catalog's namespaces: %s", e)
            return
        for ns_t in namespaces:
            ns = ".".join(ns_t)
            if ns == self.store.namespace or ns in (SCHEMA, INTERNAL, "main"):
                continue
            try:
                tables = cat.list_tables(ns)
            except Exception:
                continue
            for t in tables:
                tname = t[-1]
                view = f"SELECT * FROM {ident(REST_ALIAS, ns, tname)}"
                try:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(ns)}")
                    con.execute(f"CREATE OR REPLACE VIEW {ident(ns, tname)} AS {view}")
                    self._foreign[(ns, tname)] = view
                except Exception as e:
                    log.warning("lakeml: cannot map table %s.%s: %s", ns, tname, e)

    def _load_views(self) -> None:
        from lakeml.query.views import load_views, view_defs

        if not self._view_defs:
            self._view_defs = view_defs()
        internal = {v: f"{INTERNAL}.def_{v.split('.')[-1]}" for v in MATERIALIZED} if self.cached else {}
        _, self.skipped_views = load_views(self._con, self._view_defs, internal)
        self._materialize(None)
        self._bind_latest()

    def _bind_latest(self) -> None:
        if self.cached and self._latest is not None:
            self._con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, 'metric_latest')} AS "
                              f"SELECT * FROM {self._latest.table}")

    # -- time travel --------------------------------------------------------------------------
    def _pin(self, as_of: Any) -> None:
        """Point every view at the snapshot current at ``as_of``; undone by :meth:`_unpin`."""
        con = self._con
        ms = timetravel.resolve_ms(as_of, self._all_tables())
        for name, b in self._bound.items():
            sid = timetravel.snapshot_at(b.table, ms)
            view = iceberg_sql(b.location, sid) if sid is not None else self._empty(name, b.table)
            con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {view}")
        for d in self._view_defs:
            if d.name.split(".")[-1] == "metric_latest":
                con.execute(d.sql)
            elif d.name in MATERIALIZED and self.cached and d.name not in self.skipped_views:
                con.execute(f"CREATE OR REPLACE VIEW {d.name} AS SELECT * FROM "
                            f"{ident(INTERNAL, 'def_' + d.name.split('.')[-1])}")
        for (schema, tname), view in self._foreign.items():
            if self._rest or not view.startswith("SELECT * FROM iceberg_scan("):
                continue
            ns = self.store.namespace if schema == SCHEMA else schema
            try:
                tbl = self.store.catalog.load_table(f"{ns}.{tname}")
            except Exception:
                continue
            sid = timetravel.snapshot_at(tbl, ms)
            pinned = iceberg_sql(tbl.metadata_location, sid) if sid is not None else f"{view} LIMIT 0"
            con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {pinned}")

    def _all_tables(self):
        """The pyiceberg tables behind every view: lakeml's first, the others loaded on demand."""
        for b in self._bound.values():
            yield b.table
        for schema, tname in list(self._foreign):
            ns = self.store.namespace if schema == SCHEMA else schema
            try:
                yield self.store.catalog.load_table(f"{ns}.{tname}")
            except Exception:
                continue

    def _unpin(self) -> None:
        con = self._con
        for name, b in self._bound.items():
            con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {b.view_sql}")
        for (schema, tname), view in self._foreign.items():
            con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {view}")
        for view in MATERIALIZED:
            if self.cached and view not in self.skipped_views:
                con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM "
                            f"{ident(INTERNAL, 'mat_' + view.split('.')[-1])}")
        self._bind_latest()

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

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._bound.clear()
            self._foreign.clear()
            self._latest = None


def _fetch(cur: Any):
    try:
        return cur.to_arrow_table()
    except AttributeError:  # pragma: no cover - older duckdb
        return cur.fetch_arrow_table()

