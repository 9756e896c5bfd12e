"""Time travel of an engine: every bound view pinned at the snapshot current at a past moment, and back."""

from __future__ import annotations

from typing import Any, Iterator

from lakeml.query import timetravel
from lakeml.query.attach import INTERNAL, SCHEMA, iceberg_sql
from lakeml.query.binding import MATERIALIZED, LakeTables, Session
from lakeml.query.cache import ident
from lakeml.query.namespaces import Namespaces


class Pinning:
    """Runs an engine's queries ``as_of`` a past time: :meth:`pin` before, :meth:`unpin` after."""

    def __init__(self, session: Session, tables: LakeTables, namespaces: Namespaces):
        self.session = session
        self.tables = tables
        self.namespaces = namespaces

    def pin(self, as_of: Any) -> None:
        """Point every bound view at the snapshot current at ``as_of``; undone by :meth:`unpin`."""
        con, tables = self.session.con, self.tables
        ms = timetravel.resolve_ms(as_of, self._all_tables())
        for name, b in tables.bound.items():
            tbl = tables.table(name)
            sid = timetravel.snapshot_at(tbl, ms)
            view = iceberg_sql(b.location, sid) if sid is not None else tables.empty(name, tbl)
            con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {view}")
        materialized = tables.materialized()
        for d in tables.view_defs:
            if d.name.split(".")[-1] == "metric_latest" and tables.cached:
                con.execute(d.sql)
            elif d.name in materialized:
                con.execute(f"CREATE OR REPLACE VIEW {d.name} AS SELECT * FROM "
                            f"{ident(INTERNAL, 'def_' + d.name.split('.')[-1])}")
        for (schema, tname), view in self.namespaces.foreign.items():
            if self.session.rest or not view.startswith("SELECT * FROM iceberg_scan("):
                continue
            try:
                tbl = self.namespaces.load_table(schema, tname)
            except Exception:
                continue
            sid = timetravel.snapshot_at(tbl, ms)
            pinned = iceberg_sql(tbl.metadata_location, sid) if sid is not None else f"{view} LIMIT 0"
            con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {pinned}")

    def _all_tables(self) -> Iterator[Any]:
        """The pyiceberg tables behind every view: lakeml's first, the others loaded on demand."""
        for name in list(self.tables.bound):
            yield self.tables.table(name)
        for schema, tname in list(self.namespaces.foreign):
            try:
                yield self.namespaces.load_table(schema, tname)
            except Exception:
                continue

    def unpin(self) -> None:
        con, tables = self.session.con, self.tables
        for name, b in tables.bound.items():
            con.execute(f"CREATE OR REPLACE VIEW {ident(SCHEMA, name)} AS {b.view_sql}")
        for (schema, tname), view in self.namespaces.foreign.items():
            con.execute(f"CREATE OR REPLACE VIEW {ident(schema, tname)} AS {view}")
        for view in tables.materialized():
            if view in MATERIALIZED:
                con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM "
                            f"{ident(INTERNAL, 'mat_' + view.split('.')[-1])}")
        tables.bind_latest()
