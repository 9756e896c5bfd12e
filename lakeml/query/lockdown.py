"""The read-only lock-down of a DuckDB connection: which storage it may read, and nothing else.

Owned by the safety work (issue 9, section 6): allowed directories, the private temp
directory and the locked configuration. The engine calls :func:`allowed_roots` to
compute the roots and :func:`lock_down` once per connection.

DuckDB's ``allowed_directories`` is a plain prefix test for object-store URIs, so the
roots are the warehouse prefix and the table folders (``s3://bucket/wh/``), never the
whole bucket; a REST catalog's warehouse is its whole (table) bucket. DuckDB does not
resolve ``..`` in an ``s3://`` path before that test, which the statement check of
``guard.py`` refuses.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlparse

from lakeml.query import locations
from lakeml.query.cache import q

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore


def _root(location: str, *, bucket: bool = False) -> str:
    """The folder prefix DuckDB may read for a location, with a trailing '/' (``bucket``: the whole bucket)."""
    u = urlparse(location)
    if u.scheme in ("", "file"):
        path = u.path if u.scheme else location
        return path.rstrip("/") + "/"
    path = "" if bucket else u.path.strip("/")
    return f"{u.scheme}://{u.netloc}/{path + '/' if path else ''}"


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
                roots.add(_root(store.catalog.load_table(store.identifier(name)).location(), bucket=rest))
            except Exception:
                continue
    return {r for r in roots if not any(r != o and r.startswith(o) for o in roots)}


def is_allowed(location: str, roots: Iterable[str]) -> bool:
    """True if the table folder of ``location`` lies below one of ``roots``."""
    root = _root(locations.table_dir(location))
    return any(root.startswith(r) for r in roots)


def lock_down(con: Any, roots: set[str]) -> str:
    """Confine ``con`` to ``roots`` plus a private temp dir, and lock its configuration.

    The temp dir is made by ``mkdtemp`` (mode 0700, an unpredictable name, so nobody can
    plant a symlink in it) and removed when the connection is closed and released.
    Returns its path.
    """
    tmp = tempfile.mkdtemp(prefix="lakeml-duckdb-")
    weakref.finalize(con, shutil.rmtree, tmp, True)
    con.execute(f"SET temp_directory = {q(tmp)}")
    con.execute("SET parquet_metadata_cache = true")
    dirs = sorted(set(roots) | {tmp.rstrip('/') + '/'})
    con.execute(f"SET allowed_directories = [{', '.join(q(d) for d in dirs)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return tmp
