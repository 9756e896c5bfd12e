"""A DuckDB connection over the lake: one view per lakeml table, at its current snapshot."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lakeml.query.extensions import new_connection

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore


def s3_secret_sql(props: dict[str, str], name: str = "lakeml_s3") -> str | None:
    """``CREATE SECRET`` for DuckDB from pyiceberg's s3.* keys (None when there are none)."""
    if not any(k.startswith("s3.") for k in props):
        return None

    def q(v: str) -> str:
        return "'" + str(v).replace("'", "''") + "'"

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


SCHEMA = "lakeml"  # the DuckDB schema of the lakeml views, whatever the Iceberg namespace


class DuckEngine:
    """Owns one DuckDB connection; ``refresh()`` points the views at the newest snapshots."""

    def __init__(self, store: "TableStore"):
        self.store = store
        self._con: Any = None
        self._locations: dict[str, str | None] = {}
        self._lock = threading.RLock()

    @property
    def con(self):
        with self._lock:
            if self._con is None:
                con = new_connection()
                if sql := s3_secret_sql(self.store.config.s3_options()):
                    con.execute(sql)
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
                self._con = con
            return self._con

    def refresh(self, tables: list[str] | None = None) -> None:
        """Re-point the views of ``tables`` (default: all) at their current metadata."""
        with self._lock:
            for name in tables or list(self.store.contracts):
                tbl = self.store.table(name, refresh=True)
                loc = tbl.metadata_location if tbl.current_snapshot() is not None else None
                if name in self._locations and self._locations[name] == loc:
                    continue
                self._bind(name, tbl, loc)
                self._locations[name] = loc

    def _bind(self, name: str, tbl: Any, loc: str | None) -> None:
        view = f'"{SCHEMA}"."{name}"'
        if loc is None:
            empty = self.store.contracts[name].arrow_schema().empty_table()
            self.con.register(f"__lakeml_empty_{name}", empty)
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM __lakeml_empty_{name}")
        else:
            esc = loc.replace("'", "''")
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM iceberg_scan('{esc}')")

    def arrow(self, sql: str, params: list | None = None, *, tables: list[str] | None = None):
        """Run ``sql`` after refreshing ``tables``; returns a pyarrow Table."""
        with self._lock:
            self.refresh(tables)
            return self.con.execute(sql, params or []).fetch_arrow_table()

    def polars(self, sql: str, params: list | None = None, *, tables: list[str] | None = None):
        import polars as pl

        return pl.from_arrow(self.arrow(sql, params, tables=tables))

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                self._locations.clear()
