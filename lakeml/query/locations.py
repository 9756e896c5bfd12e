"""Where every table of the catalog currently is: its metadata location, found cheaply.

On pyiceberg's SQL catalog one query of its ``iceberg_tables`` table returns the
current metadata location of every table in every namespace (well under a
millisecond on SQLite), so the engine can tell without loading any metadata
whether a view has to be re-pointed. Other catalogs load the tables asked for.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.query")

Ident = tuple[str, str]  # (namespace, table); nested namespaces are dot-joined


def is_sql_catalog(catalog) -> bool:
    try:
        from pyiceberg.catalog.sql import SqlCatalog
    except ImportError:  # pragma: no cover - sql extra missing
        return False
    return isinstance(catalog, SqlCatalog)


def is_rest_catalog(catalog) -> bool:
    from pyiceberg.catalog.rest import RestCatalog

    return isinstance(catalog, RestCatalog)


_SEEN: "weakref.WeakKeyDictionary[object, tuple]" = weakref.WeakKeyDictionary()
_SEEN_LOCK = threading.Lock()


def sql_catalog_locations(catalog) -> dict[Ident, str | None]:
    """Every table of a pyiceberg SQL catalog with its current metadata location (one query).

    On a SQLite file in rollback-journal mode (pyiceberg's default) the answer is reused while
    the file's change counter, which SQLite bumps on every committed write, stays the same.
    """
    from sqlalchemy import text

    sig = sqlite_signature(catalog)
    if sig is not None:
        with _SEEN_LOCK:
            seen = _SEEN.get(catalog)
        if seen is not None and seen[0] == sig:
            return dict(seen[1])
    with catalog.engine.connect() as c:
        rows = c.execute(text("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                              "WHERE catalog_name = :c"), {"c": catalog.name}).fetchall()
    out = {(ns, name): loc for ns, name, loc in rows}
    if sig is not None:
        with _SEEN_LOCK:
            _SEEN[catalog] = (sig, dict(out))
    return out


def sqlite_signature(catalog) -> tuple | None:
    """(device, inode, change counter) of a SQLite catalog file, or None when it cannot vouch for changes.

    The counter sits at bytes 24-27 of the header and changes with every committed write in
    rollback-journal mode; in WAL mode (header bytes 18-19 == 2), while a journal exists
    (a write in flight or a crashed one) or for anything but a SQLite file, there is no signature.
    It is read before the catalog is queried, so a write racing the query only causes a re-query.
    """
    try:
        url = catalog.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        with open(url.database, "rb") as f:
            head = f.read(100)
            st = os.fstat(f.fileno())
        if len(head) < 100 or head[18] != 1 or head[19] != 1 or os.path.exists(url.database + "-journal"):
            return None
        return st.st_dev, st.st_ino, head[24:28]
    except (OSError, AttributeError, TypeError):
        return None


def lakeml_locations(store: "TableStore", names: list[str]) -> dict[str, str | None]:
    """Current metadata location of the lakeml tables ``names`` (None: the table does not exist yet)."""
    cat = store.catalog
    if is_sql_catalog(cat):
        locs = sql_catalog_locations(cat)
        return {n: locs.get((store.namespace, n)) for n in names}
    from pyiceberg.exceptions import NoSuchTableError

    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = cat.load_table(store.identifier(n)).metadata_location
        except NoSuchTableError:
            out[n] = None
    return out


def table_dir(metadata_location: str) -> str:
    """The table folder of a metadata file location (``.../table/metadata/x.json`` -> ``.../table``)."""
    head, sep, _ = metadata_location.rpartition("/metadata/")
    return head if sep else metadata_location.rsplit("/", 1)[0]
