"""``lakeml bi export``: a DuckDB database file whose views read the live Iceberg tables.

The file holds views only, no data: ``lakeml.<table>`` for each lakeml table, the
views of ``sql/``, and ``<namespace>.<table>`` for every other table of a SQL catalog.
Each view is ``iceberg_scan('<table folder>', version => '?')``: DuckDB finds the newest
metadata file of the table when the query runs, so a BI tool always sees current data
without lakeml running. That needs two settings in the BI tool's DuckDB connection
(DuckDB does not store settings in a database file):

* ``unsafe_enable_version_guessing = true`` (how DuckDB finds the newest metadata file);
* ``extension_directory`` holding the ``iceberg``, ``httpfs`` and ``avro`` extensions;
  the export installs them there from the local ``duckdb-extension-*`` packages.

An S3 warehouse also needs a ``CREATE SECRET`` (TYPE s3) in the BI tool's session.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse
from typing import TYPE_CHECKING, Any

from lakeml.errors import InvalidInputError, StorageError
from lakeml.query import locations
from lakeml.query.cache import ident, q
from lakeml.query.engine import INTERNAL, SCHEMA, s3_secret_sql
from lakeml.query.extensions import EXTENSIONS, extension_path, new_connection

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.tables import TableStore

log = logging.getLogger("lakeml.query")


@dataclass
class BiExport:
    """Where the export went and how a BI tool connects to it."""

    path: str
    extension_directory: str
    views: list[str]
    needs_s3_secret: bool
    skipped_views: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, str]:
        """DuckDB settings the BI tool's connection needs (``duckdb.connect(path, config=...)``)."""
        return {"extension_directory": self.extension_directory, "unsafe_enable_version_guessing": "true",
                "autoinstall_known_extensions": "false"}

    @property
    def sqlalchemy_url(self) -> str:
        return f"duckdb:///{self.path}"

    @property
    def connect_args(self) -> dict[str, Any]:
        """duckdb-engine ``connect_args`` (Superset: Advanced > Other > Engine parameters)."""
        return {"read_only": True, "config": self.config, "preload_extensions": list(EXTENSIONS)}

    def init_sql(self) -> str:
        """The same settings as SQL, for tools with an init-SQL field (Grafana, DBeaver, the duckdb CLI)."""
        lines = [f"SET extension_directory = {q(self.extension_directory)};",
                 "SET unsafe_enable_version_guessing = true;"]
        lines += [f"LOAD {name};" for name in EXTENSIONS]
        if self.needs_s3_secret:
            lines.append("-- the warehouse is on S3: add your credentials, e.g.\n-- CREATE SECRET (TYPE s3, "
                         "KEY_ID '...', SECRET '...', ENDPOINT 'host:port', URL_STYLE 'path', USE_SSL false);")
        return "\n".join(lines) + "\n"


def default_extension_directory() -> str:
    """DuckDB's own default (``~/.duckdb/extensions``): BI tools look there without configuration."""
    return str(Path.home() / ".duckdb" / "extensions")


def install_extensions(directory: str) -> None:
    """Copy lakeml's DuckDB extensions into ``directory`` in DuckDB's layout (from local files, no network)."""
    con = new_connection()
    try:
        con.execute(f"SET extension_directory = {q(directory)}")
        for name in EXTENSIONS:
            con.execute(f"INSTALL {q(str(extension_path(name)))}")
    finally:
        con.close()


def export(store: "TableStore", path: str | os.PathLike, *, extension_directory: str | None = None,
           overwrite: bool = False) -> BiExport:
    """Write the DuckDB file at ``path``; returns how to connect to it.

    An existing file is replaced only with ``overwrite=True``, and only if it is a DuckDB
    database; a path inside the warehouse or the catalog's database file is always refused.
    """
    from lakeml.query.views import load_views, view_defs

    target = Path(path).expanduser().resolve()
    if target.suffix not in (".duckdb", ".db", ".ddb"):
        raise InvalidInputError(f"BI export path {str(path)!r} should end in .duckdb (a DuckDB database file)")
    check_target(store, target, str(path))
    if target.exists():
        if not overwrite:
            raise InvalidInputError(f"BI export target {str(path)!r} exists ({target}); choose a new file name, "
                                    "or replace it with overwrite=True ('lakeml bi export --overwrite')")
        if not is_duckdb_file(target):
            raise InvalidInputError(f"BI export target {target} exists and is not a DuckDB database, so it is "
                                    "not replaced even with overwrite; choose another file name")
        target.unlink()
        Path(str(target) + ".wal").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    ext_dir = str(Path(extension_directory or default_extension_directory()).expanduser().resolve())
    install_extensions(ext_dir)
    store.ensure_all()  # every lakeml table exists, so every view has metadata to read
    tables = _table_dirs(store)
    secret = s3_secret_sql(store.config.s3_options())
    con = new_connection(str(target))
    made: list[str] = []
    try:
        con.execute("SET unsafe_enable_version_guessing = true")
        if secret:
            con.execute(secret.replace("CREATE OR REPLACE SECRET", "CREATE OR REPLACE TEMPORARY SECRET"))
        for (schema, name), folder in sorted(tables.items()):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            try:
                con.execute(f"CREATE OR REPLACE VIEW {ident(schema, name)} AS "
                            f"SELECT * FROM iceberg_scan({q(folder)}, version => '?')")
                made.append(f"{schema}.{name}")
            except Exception as e:
                log.warning("lakeml: BI export: cannot map %s.%s: %s", schema, name, e)
        done, skipped = load_views(con, view_defs())
        made += done
        con.execute(f"DROP SCHEMA IF EXISTS {ident(INTERNAL)} CASCADE")
        con.execute("CHECKPOINT")
    except Exception as e:
        con.close()
        target.unlink(missing_ok=True)
        raise StorageError(f"BI export to {target} failed: {e}") from e
    con.close()
    return BiExport(str(target), ext_dir, made, secret is not None, skipped)


def check_target(store: "TableStore", target: Path, given: str) -> None:
    """Refuse an export path inside the warehouse (or a table folder) or at the catalog's database file."""
    cfg = store.config
    own = {"the catalog database": [p for p in (_local_path(cfg.properties.get("uri", "")),) if p]}
    own["the warehouse"] = [p for p in (_local_path(cfg.warehouse_dir or ""), _local_path(cfg.warehouse or ""))
                            if p]
    for what, paths in own.items():
        for p in paths:
            if target == p or target.is_relative_to(p) or (what == "the catalog database"
                                                           and target.parent == p.parent
                                                           and target.name.startswith(p.name)):
                raise InvalidInputError(
                    f"BI export target {given!r} is {what} or lies inside it ({p}); writing there would "
                    "destroy lake data. Export to a file outside the warehouse, e.g. ./lakeml.duckdb")


def _local_path(uri: str) -> Path | None:
    """The resolved local path of a file path, ``file://`` or ``sqlite:///`` URI (None for anything else)."""
    if not uri:
        return None
    if uri.startswith("sqlite:///"):
        rest = uri[len("sqlite:///"):].split("?", 1)[0]
        return Path(unquote(rest)).resolve() if rest and rest != ":memory:" else None  # relative: to the cwd
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path)).resolve()
    if "://" not in uri and uri.startswith("/"):
        return Path(uri).resolve()
    return None


def is_duckdb_file(path: Path) -> bool:
    """True if ``path`` starts with DuckDB's file header ("DUCK" at byte 8)."""
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def _table_dirs(store: "TableStore") -> dict[tuple[str, str], str]:
    """(DuckDB schema, table) -> table folder, for the lakeml tables and the other tables of the catalog."""
    cat = store.catalog
    out: dict[tuple[str, str], str] = {}
    if locations.is_sql_catalog(cat):
        for (ns, name), loc in locations.sql_catalog_locations(cat).items():
            if not loc:
                continue
            if ns == store.namespace:
                out[(SCHEMA, name)] = locations.table_dir(loc)
            elif ns not in (SCHEMA, INTERNAL, "main"):
                out[(ns, name)] = locations.table_dir(loc)
        return out
    for name in store.contracts:
        out[(SCHEMA, name)] = store.table(name).location()
    try:
        for ns_t in cat.list_namespaces():
            ns = ".".join(ns_t)
            if ns in (store.namespace, SCHEMA, INTERNAL, "main"):
                continue
            for t in cat.list_tables(ns):
                out[(ns, t[-1])] = cat.load_table(t).location()
    except Exception as e:  # other namespaces are a bonus; the lakeml tables are what matters
        log.warning("lakeml: BI export: cannot list the catalog's other tables: %s", e)
    return out
