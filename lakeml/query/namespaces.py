"""Views over the rest of the catalog: ``<namespace>.<table>`` and the input snapshots runs read."""

from __future__ import annotations

import logging

from typing import Any

from lakeml.query.attach import INTERNAL, REST_ALIAS, SCHEMA, iceberg_sql
from lakeml.query.binding import LakeTables, Session
from lakeml.query.cache import ident, q

log = logging.getLogger("lakeml.query")


class Namespaces:
    """Maps the catalog's other tables into an engine: ``<namespace>.<table>`` and input snapshots."""

    def __init__(self, store: Any, session: Session, tables: LakeTables):
        self.store = store
        self.session = session
        self.tables = tables
        self.foreign: dict[tuple[str, str], str] = {}  # (schema, table) -> view sql
        self._snap_key: Any = None

    def reset(self) -> None:
        """Forget every binding (the connection was replaced)."""
        self.foreign.clear()
        self._snap_key = None

    def load_table(self, schema: str, tname: str) -> Any:
        """The pyiceberg table behind the view ``<schema>.<tname>``."""
        ns = self.store.namespace if schema == SCHEMA else schema
        return self.store.catalog.load_table(f"{ns}.{tname}")

    def bind_foreign(self, all_locs: dict) -> None:
        """Views ``<namespace>.<table>`` for every other table of a SQL catalog; REST: the attached catalog."""
        con = self.session.con
        if self.session.rest:
            if not self.foreign:
                self.bind_rest_namespaces()
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
            if self.foreign.get(key) == view:
                continue
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
                con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {view}")
                self.foreign[key] = view
            except Exception as e:  # a table other engines broke must not break lakeml
                log.warning("lakeml: cannot map table %s.%s: %s", ns, tname, e)
        for key in [k for k in self.foreign if k not in seen]:
            con.execute(f"DROP VIEW IF EXISTS {ident(*key)}")
            del self.foreign[key]

    def bind_input_snapshots(self) -> None:
        """``<ns>.<table>__snapshots``: the rows of every snapshot of a table that some run logged as input.

        One view per table read by runs, with a leading ``snapshot_id`` column, so one query can
        compare what two runs saw (``JOIN lakeml.dataset_lineage USING (snapshot_id)``).
        """
        con = self.session.con
        inputs = self.tables.bound.get("inputs")
        key = (inputs.location if inputs else None, tuple(sorted(self.foreign.items())))
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
            if (schema, tname) not in self.foreign or (schema == SCHEMA and tname in self.store.contracts):
                continue
            try:
                tbl = self.store.catalog.load_table(table_id)
                live = [sid for sid in sids if tbl.snapshot_by_id(sid) is not None]
                if not live:
                    continue
                if self.session.rest:
                    parts = [f"SELECT {sid}::BIGINT AS snapshot_id, * FROM {ident(REST_ALIAS, ns, tname)} "
                             f"AT (VERSION => {sid})" for sid in live]
                else:
                    parts = [f"SELECT {sid}::BIGINT AS snapshot_id, * FROM "
                             f"iceberg_scan({q(tbl.metadata_location)}, snapshot_from_id = {sid})" for sid in live]
                con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname + '__snapshots')} AS "
                            + " UNION ALL BY NAME ".join(parts))
            except Exception as e:  # lineage views are a convenience; never break a query over them
                log.warning("lakeml: cannot map the input snapshots of %s: %s", table_id, e)

    def bind_rest_namespaces(self) -> None:
        """REST catalog: a view per table of every other namespace, over the ATTACHed catalog."""
        cat, con = self.store.catalog, self.session.con
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
                    self.foreign[(ns, tname)] = view
                except Exception as e:
                    log.warning("lakeml: cannot map table %s.%s: %s", ns, tname, e)
