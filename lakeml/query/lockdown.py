"""The read-only lock-down of a DuckDB connection: which storage it may read, and nothing else.

Owned by the safety work (issue 9, section 6): allowed directories, the private temp
directory and the locked configuration. The engine calls :func:`allowed_roots` to
compute the roots and :func:`lock_down` once per connection.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any, Iterable

from lakeml.query import locations
from lakeml.query.attach import _root
from lakeml.query.cache import q

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore


def allowed_roots(store: "TableStore", all_locs: dict, *, rest: bool) -> set[str]:
    """The storage prefixes a read-only connection may read: the warehouse and every table folder."""
    cfg = store.config
    roots = set()
    if cfg.warehouse_dir:
        roots.add(_root(cfg.warehouse_dir))
    wh = cfg.warehouse or ""
    if "://" in wh or wh.startswith("/"):
        roots.add(_root(wh))
    for loc in all_locs.values():
        if loc:
            roots.add(_root(locations.table_dir(loc)))
    if rest or not roots:
        for name in store.contracts:
            try:
                roots.add(_root(store.catalog.load_table(store.identifier(name)).location()))
            except Exception:
                continue
    return {r for r in roots if not any(r != o and r.startswith(o) for o in roots)}


def is_allowed(location: str, roots: Iterable[str]) -> bool:
    """True if the table folder of ``location`` lies below one of ``roots``."""
    root = _root(locations.table_dir(location))
    return any(root.startswith(r) for r in roots)


def lock_down(con: Any, roots: set[str]) -> None:
    """Confine ``con`` to ``roots`` (plus its temp dir) and lock its configuration."""
    tmp = os.path.join(tempfile.gettempdir(), f"lakeml-duckdb-{os.getpid()}")
    con.execute(f"SET temp_directory = {q(tmp)}")
    con.execute("SET parquet_metadata_cache = true")
    dirs = sorted(set(roots) | {tmp.rstrip('/') + '/'})
    con.execute(f"SET allowed_directories = [{', '.join(q(d) for d in dirs)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
