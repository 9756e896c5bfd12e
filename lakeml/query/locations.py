"""Where every table of the catalog currently is: its metadata location, found cheaply.

On pyiceberg's SQL catalog one query of its ``iceberg_tables`` table returns the
current metadata location of every table in every namespace (well under a
millisecond on SQLite), so the engine can tell without loading any metadata
whether a view has to be re-pointed. Other catalogs load the tables asked for.

:class:`CatalogLocations` picks the cheapest way per catalog: a SQLite catalog file
(the embedded default) is read with the standard library's ``sqlite3``, so a read-only
process imports neither SQLAlchemy nor pyiceberg's catalog; any other SQL catalog
(PostgreSQL...) answers one query for all tables through the catalog's own engine.
The table and column names of ``iceberg_tables`` come from
:mod:`lakeml.storage._pyiceberg_compat`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING
from urllib.parse import quote

from lakeml.storage._pyiceberg_compat import sql_locations_query

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
        rows = c.execute(text(sql_locations_query("c")), {"c": catalog.name}).fetchall()
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
        return file_signature(url.database)
    except (AttributeError, TypeError):
        return None


def file_signature(path: str) -> tuple | None:
    """:func:`sqlite_signature` of the SQLite file at ``path`` (None when it cannot vouch for changes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
            st = os.fstat(f.fileno())
    except OSError:
        return None
    if len(head) < 100 or head[18] != 1 or head[19] != 1 or os.path.exists(path + "-journal"):
        return None
    return st.st_dev, st.st_ino, head[24:28]


def sqlite_file(properties: dict) -> str | None:
    """The local file of a SQL catalog on SQLite (``uri=sqlite:///<path>``), or None for any other catalog."""
    uri = properties.get("uri") or ""
    if properties.get("type", "sql") != "sql" or not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


class CatalogLocations:
    """The current metadata location of every table of one catalog, as cheaply as that catalog allows.

    * SQLite catalog file (the embedded default): read with stdlib ``sqlite3``, read-only, and
      re-read only when SQLite's change counter moved (:func:`file_signature`);
    * another pyiceberg SQL catalog (PostgreSQL, MySQL...): one query for all tables, every call
      (there is no change counter to trust);
    * any other catalog (REST, Glue...): :meth:`all` is None and :meth:`lakeml` loads the tables.
    """

    def __init__(self, store: "TableStore"):
        self._store = store
        self._file = sqlite_file(store.config.properties)
        self._seen: tuple | None = None  # (signature, answer) of the SQLite file
        self.queries = 0  # catalog queries run (each answers for every table)

    @property
    def kind(self) -> str:
        """``"sqlite"`` (read directly), ``"sql"`` (through the catalog's engine) or ``"other"``."""
        if self._file is not None and os.path.isfile(self._file):
            return "sqlite"
        return "sql" if is_sql_catalog(self._store.catalog) else "other"

    def all(self) -> dict[Ident, str | None] | None:
        """``{(namespace, table): metadata location}`` of every table; None when the catalog cannot list them."""
        kind = self.kind
        if kind == "sqlite":
            return self._read_file()
        if kind == "sql":
            self.queries += 1
            return sql_catalog_locations(self._store.catalog)
        return None

    def lakeml(self, names: list[str], every: dict[Ident, str | None] | None = None) -> dict[str, str | None]:
        """Current metadata location of the lakeml tables ``names`` (None: the table does not exist yet)."""
        if every is None:
            every = self.all()
        if every is not None:
            return {n: every.get((self._store.namespace, n)) for n in names}
        return lakeml_locations(self._store, names)

    def _read_file(self) -> dict[Ident, str | None]:
        path = self._file
        assert path is not None
        sig = file_signature(path)
        if sig is not None and self._seen is not None and self._seen[0] == sig:
            return dict(self._seen[1])
        self.queries += 1
        con = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute(sql_locations_query("c"), {"c": self._store.config.catalog_name}).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            rows = []  # a catalog file pyiceberg has not set up yet: no tables
        finally:
            con.close()
        out = {(ns, name): loc for ns, name, loc in rows}
        self._seen = (sig, dict(out)) if sig is not None else None
        return out


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
