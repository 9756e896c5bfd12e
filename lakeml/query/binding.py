"""Binding an engine's views: each lakeml table, its in-memory copy, the materialized views of ``sql/``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lakeml.errors import NotFoundError, StorageError
from lakeml.query import locations, summary_store
from lakeml.query.attach import INTERNAL, SCHEMA, iceberg_sql
from lakeml.query.cache import TableCache, ident
from lakeml.query.files import EMPTY, ManifestCache

log = logging.getLogger("lakeml.query")

UNCACHED = {"metrics"}  # tables too large to copy into memory
# Views of sql/ that the client's engine materializes and refreshes by key as their table grows.
MATERIALIZED = {"lakeml.runs_latest": ("runs", "run_id"), "lakeml.params_latest": ("params", "run_id"),
                "lakeml.tags_latest": ("tags", "run_id"), "lakeml.experiments_latest": ("experiments", "experiment_id")}
_MANIFESTS = ManifestCache()


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


class BindingMixin:
    """The part of :class:`~lakeml.query.engine.DuckEngine` that points ``lakeml.<table>`` at each table."""

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
                summary_store.sync(con, self._latest, tbl, listing)
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
