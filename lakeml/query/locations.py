"""Where every table of the catalog currently is: its metadata location, found cheaply.

On pyiceberg's SQL catalog one query of its ``iceberg_tables`` table returns the
current metadata location of every table in every namespace (well under a
millisecond on SQLite), so the engine can tell without loading any metadata
whether a view has to be re-pointed. Other catalogs load the tables asked for.
"""

from __future__ import annotations

import logging
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


def sql_catalog_locations(catalog) -> dict[Ident, str | None]:
    """Every table of a pyiceberg SQL catalog with its current metadata location (one query)."""
    from sqlalchemy import text

    with catalog.engine.connect() as c:
        rows = c.execute(text("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                              "WHERE catalog_name = :c"), {"c": catalog.name}).fetchall()
    return {(ns, name): loc for ns, name, loc in rows}


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
