"""Time travel of an engine: every view pinned at the snapshot current at a past moment, and back."""

from __future__ import annotations

from typing import Any

from lakeml.query import timetravel
from lakeml.query.attach import INTERNAL, SCHEMA, iceberg_sql
from lakeml.query.binding import MATERIALIZED
from lakeml.query.cache import ident


class PinningMixin:
    """The part of :class:`~lakeml.query.engine.DuckEngine` that runs queries ``as_of`` a past time."""

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
