"""The lakeml tables of an engine: ``lakeml.<table>``, their in-memory copies and the views of ``sql/``.

Two modes (``cached``):

* cached (the client's long-lived engine): every table is bound on refresh; the small tables
  are in-memory copies kept current file by file, four views of ``sql/`` are materialized,
  and ``metric_latest`` is a running summary. This needs pyiceberg (manifests, schemas).
* plain: a table is ``iceberg_scan(<metadata location>)`` bound without pyiceberg, and only
  the tables and views a query names are bound, so a one-query process (the CLI) pays only
  for what it reads. Results are the same rows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from lakeml.errors import StorageError
from lakeml.query import summary_store
from lakeml.query.attach import INTERNAL, SCHEMA, iceberg_sql
from lakeml.query.cache import LatestCache, TableCache, ident
from lakeml.query.files import EMPTY, ManifestCache

log = logging.getLogger("lakeml.query")

UNCACHED = {"metrics"}  # tables too large to copy into memory
# Views of sql/ that the client's engine materializes and refreshes by key as their table grows.
MATERIALIZED = {"lakeml.runs_latest": ("runs", "run_id"), "lakeml.params_latest": ("params", "run_id"),
                "lakeml.tags_latest": ("tags", "run_id"), "lakeml.experiments_latest": ("experiments", "experiment_id")}
_MANIFESTS = ManifestCache()
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words of a query that list or describe the catalog itself: every table and view must be bound.
_INTROSPECTION = {"information_schema", "duckdb_tables", "duckdb_views", "duckdb_columns", "show", "describe",
                  "summarize", "pg_catalog", "sqlite_master", "duckdb_constraints", "duckdb_dependencies"}


@dataclass
class Session:
    """What an engine's parts share: its DuckDB connection and how that connection was opened."""

    con: Any = None
    rest: bool = False  # a REST catalog ATTACHed in DuckDB
    roots: set[str] = field(default_factory=set)  # storage prefixes the connection may read


@dataclass
class _Bound:
    """What one view points at."""

    location: str | None = None
    table: Any = None  # the pyiceberg Table (cached mode, or loaded on demand); None while unknown
    listing: Any = EMPTY
    schema_id: int | None = -1
    view_sql: str = ""
    cache: Any = None
    added: list | None = field(default_factory=list)  # file numbers not yet in the materialized views


def words(sql: str) -> set[str]:
    """The lower-cased identifiers of ``sql`` (over-inclusive: string contents count too)."""
    return {w.lower() for w in _WORD.findall(sql)}


class LakeTables:
    """Binds ``lakeml.<table>`` for each lakeml table and loads the views of ``sql/`` over them."""

    def __init__(self, store: Any, session: Session, *, cached: bool):
        self.store = store
        self.session = session
        self.cached = cached
        self.bound: dict[str, _Bound] = {}
        self.skipped_views: dict[str, str] = {}
        self.latest: LatestCache | None = None
        self._defs: list | None = None
        self._deps: dict[str, tuple[set[str], set[str]]] = {}  # view -> (base tables, views) it reads, closed
        self._loaded: set[str] = set()
        self._latest_users: set[str] | None = None
        self._empty_sql: dict[tuple[str, int | None], str] = {}

    def reset(self) -> None:
        """Forget every binding (the connection was replaced)."""
        self.bound.clear()
        self._loaded.clear()
        self.latest = None

    # -- the views of sql/ ----------------------------------------------------------------------
    @property
    def view_defs(self) -> list:
        if self._defs is None:
            from lakeml.query.views import view_defs

            self._defs = view_defs()
        return self._defs

    def _closure(self, names: set[str]) -> tuple[set[str], set[str]]:
        """(lakeml tables, view names) that identifiers ``names`` reach through the views' definitions."""
        short = {d.name.split(".")[-1]: d for d in self.view_defs}
        seen, views, todo = set(names), set(), list(names & short.keys())
        while todo:
            v = todo.pop()
            if v in views:
                continue
            views.add(v)
            new = words(short[v].sql) - seen
            seen |= new
            todo.extend(new & short.keys())
        return seen & set(self.store.contracts), {short[v].name for v in views}

    def wanted(self, sql: str) -> tuple[list[str] | None, set[str] | None]:
        """The lakeml tables and views of ``sql/`` that ``sql`` reads; (None, None): all of them."""
        found = words(sql)
        if found & _INTROSPECTION:
            return None, None
        tables, views = self._closure(found)
        return sorted(tables), views

    def _bases(self, view: str) -> set[str]:
        if view not in self._deps:
            self._deps[view] = self._closure({view.split(".")[-1]})
        return self._deps[view][0]

    def load_views(self, only: set[str] | None = None, *, within: set[str] | None = None,
                   reload: bool = False) -> None:
        """Create the views of ``sql/``: cached mode all of them; plain mode those (of ``only``) whose
        tables are all bound (and all in ``within``). ``reload``: re-create the ones already loaded."""
        from lakeml.query.views import load_views

        con = self.session.con
        if self.cached:
            internal = {v: f"{INTERNAL}.def_{v.split('.')[-1]}" for v in MATERIALIZED}
            _, self.skipped_views = load_views(con, self.view_defs, internal)
            self._loaded = {d.name for d in self.view_defs} - set(self.skipped_views)
            self.materialize(None)
            self.bind_latest()
            return
        todo = [d for d in self.view_defs
                if (reload and d.name in self._loaded)
                or (d.name not in self._loaded and (only is None or d.name in only)
                    and self._bases(d.name) <= self.bound.keys()
                    and (within is None or self._bases(d.name) <= within))]
        if not todo:
            return
        done, skipped = load_views(con, todo)
        self._loaded |= set(done)
        self.skipped_views.update(skipped)
        for name in done:
            self.skipped_views.pop(name, None)

    def needs_latest(self, sql: str) -> bool:
        """Whether ``sql`` reads the metric summary (directly or through a view of sql/)."""
        if self._latest_users is None:
            users = {"metric_latest"}
            grew = True
            while grew:
                grew = False
                for d in self.view_defs:
                    short = d.name.split(".")[-1]
                    if short not in users and any(u in d.sql for u in users):
                        users.add(short)
                        grew = True
            self._latest_users = users
        return any(u in sql for u in self._latest_users)

    # -- one table ------------------------------------------------------------------------------
    def table(self, name: str) -> Any:
        """The pyiceberg table behind ``lakeml.<name>`` (loaded on demand in plain mode), or None."""
        b = self.bound.get(name)
        if b is None or b.location is None:
            return None
        if b.table is None or b.table.metadata_location != b.location:
            b.table = self._load(name, b.location)
        return b.table

    def _load(self, name: str, loc: str | None) -> Any:
        if loc is None:
            return None
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.store.catalog.load_table(self.store.identifier(name))
        except NoSuchTableError:
            return None
        except Exception as e:
            raise StorageError(f"cannot load table {self.store.identifier(name)}: {e}") from e

    def bind(self, name: str, loc: str | None) -> bool:
        """Point ``lakeml.<name>`` at ``loc``; True if its columns changed (views must reload)."""
        b = self.bound.get(name)
        if b is not None and b.location == loc and b.view_sql:
            return False
        if not self.cached:
            return self._bind_plain(name, loc, b or _Bound())
        b = b or _Bound()
        tbl = self._load(name, loc)
        loc = tbl.metadata_location if tbl is not None else None
        if tbl is not None and tbl.current_snapshot() is None:
            listing = EMPTY
        else:
            listing = _MANIFESTS.listing(tbl) if tbl is not None else EMPTY
        schema_id = tbl.schema().schema_id if tbl is not None else None
        columns_changed = schema_id != b.schema_id
        con = self.session.con
        if name not in UNCACHED:
            if b.cache is None:
                b.cache = TableCache(name)
            _, added = b.cache.sync(con, tbl, listing, self._empty_arrow(name, tbl))
            b.added = None if (added is None or b.added is None) else b.added + added
            view = b.cache.select_sql()
        elif tbl is not None and tbl.current_snapshot() is not None:
            view = iceberg_sql(loc)
        else:
            view = self.empty(name, tbl)
        con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {view}")
        if name == "metrics" and self.latest is not None:  # built on first need, then kept current
            summary_store.sync(con, self.latest, tbl, listing)
        b.location, b.table, b.listing, b.schema_id, b.view_sql = loc, tbl, listing, schema_id, view
        self.bound[name] = b
        return columns_changed

    def _bind_plain(self, name: str, loc: str | None, b: _Bound) -> bool:
        """Plain mode: ``iceberg_scan`` of the location (an empty table reads as no rows), no pyiceberg.
        On a re-bind the view's columns before and after tell whether the views of sql/ must reload."""
        con = self.session.con
        view = iceberg_sql(loc) if loc is not None else self.empty(name, None)
        before = self._columns(name) if b.view_sql else None
        con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {view}")
        changed = before is not None and self._columns(name) != before
        b.location, b.table, b.listing, b.view_sql = loc, None, None, view
        self.bound[name] = b
        return changed

    def _columns(self, name: str) -> list:
        return self.session.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = $1 AND table_name = $2 ORDER BY column_index", [SCHEMA, name]).fetchall()

    def _empty_arrow(self, name: str, tbl: Any):
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        schema = tbl.schema() if tbl is not None else self.store.contracts[name].schema()
        return schema_to_pyarrow(schema, include_field_ids=False).empty_table()

    def empty(self, name: str, tbl: Any) -> str:
        """A typed, empty ``SELECT`` for a table without data (persistable: no registered objects)."""
        key = (name, tbl.schema().schema_id if tbl is not None else None)
        if key not in self._empty_sql:
            con = self.session.con
            con.register("__lakeml_empty", self._empty_arrow(name, tbl))
            try:
                cols = con.execute("DESCRIBE SELECT * FROM __lakeml_empty").fetchall()
            finally:
                con.unregister("__lakeml_empty")
            self._empty_sql[key] = "SELECT " + ", ".join(f"NULL::{t} AS {ident(c)}" for c, t, *_ in cols) + " LIMIT 0"
        return self._empty_sql[key]

    # -- cached mode: materialized views and the metric summary ----------------------------------
    def materialize(self, table: str | None = None) -> None:
        """Bring the materialized views of ``table`` (default: all) up to date with its copy."""
        if not self.cached:
            return
        con = self.session.con
        for view, (base, key) in MATERIALIZED.items():
            b = self.bound.get(base)
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
        for name in ([table] if table else list(self.bound)):
            if name in self.bound:
                self.bound[name].added = []

    def pending_materialize(self, names: list[str]) -> None:
        """Cached mode, nothing re-bound: apply the appends the copies took in since the last query."""
        for n in names:
            if n in self.bound and self.bound[n].added != []:
                self.materialize(n)

    def ensure_latest(self) -> None:
        """Cached mode: build the metric summary (restored from local disk when stored) on first need."""
        if not self.cached or self.latest is not None or "metrics" not in self.bound:
            return
        b = self.bound["metrics"]
        latest = LatestCache()
        latest.create(self.session.con)
        summary_store.restore(self.session.con, latest, b.table)
        summary_store.sync(self.session.con, latest, b.table, b.listing)
        self.latest = latest
        self.bind_latest()

    def bind_latest(self) -> None:
        if self.cached and self.latest is not None:
            self.session.con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, 'metric_latest')} AS "
                                     f"SELECT * FROM {self.latest.table}")

    def materialized(self) -> list[str]:
        """The views of ``MATERIALIZED`` currently served from a materialized copy."""
        if not self.cached:
            return []
        return [v for v in MATERIALIZED if v not in self.skipped_views and v in self._loaded]
