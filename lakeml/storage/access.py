"""How other engines read a lakeml table: its current metadata location and ready snippets.

DuckDB's ``iceberg_scan('<table folder>')`` needs a ``version-hint.text``, which catalog-managed
tables do not have; every engine can instead be pointed at the current metadata file, or go
through the catalog (pyiceberg, and Daft or polars on top of a pyiceberg table). See
``docs/engines.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore


@dataclass(frozen=True)
class TableAccess:
    """One lakeml table as another engine sees it."""

    name: str
    identifier: str
    location: str
    metadata_location: str
    snapshot_id: int | None
    snippets: dict[str, str] = field(default_factory=dict)  # engine -> code

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def catalog_snippet(config: "LakeConfig") -> str:
    """Python that opens the lake's catalog with plain pyiceberg, as ``catalog``."""
    if config.embedded:
        # pyiceberg's SqlCatalog keys every row by catalog name: it must be opened as "lakeml"
        props = {k: config.properties[k] for k in ("type", "uri", "warehouse")}
        return f"from pyiceberg.catalog import load_catalog\ncatalog = load_catalog({config.catalog_name!r}, **{props!r})"
    return (f"from pyiceberg.catalog import load_catalog\n"
            f"catalog = load_catalog({config.catalog_name!r})  # the profile in ~/.pyiceberg.yaml")


def snippets(config: "LakeConfig", identifier: str, metadata_location: str) -> dict[str, str]:
    """Ready code for DuckDB, polars, Daft and pyiceberg reading one table. On S3 the snippets carry
    the lake's endpoint, region and key id; the secret key is left as a placeholder to fill in."""
    s3 = metadata_location.startswith(("s3://", "s3a://"))
    props = config.properties
    return {
        "duckdb": f"{_duckdb_secret(props) if s3 else ''}SELECT * FROM iceberg_scan('{metadata_location}');",
        "polars": f"import polars as pl\ndf = pl.scan_iceberg({metadata_location!r}"
                  f"{f', storage_options={_polars_options(props)!r}' if s3 else ''}).collect()",
        "daft": f"{catalog_snippet(config)}\nimport daft\n"
                f"df = daft.read_iceberg(catalog.load_table({identifier!r})).collect()",
        "pyiceberg": f"{catalog_snippet(config)}\n"
                     f"arrow = catalog.load_table({identifier!r}).scan().to_arrow()",
    }


SECRET_PLACEHOLDER = "<s3.secret-access-key>"


def _duckdb_secret(props: dict[str, str]) -> str:
    from lakeml.storage.objectstore import S3Settings  # the one parse of the s3.* keys

    s = S3Settings.from_properties(props)
    parts = ["TYPE s3", f"KEY_ID '{s.access_key or '...'}'", f"SECRET '{SECRET_PLACEHOLDER}'", f"REGION '{s.region}'"]
    if s.endpoint:
        parts.append(f"ENDPOINT '{s.endpoint}'")
        if not s.virtual_addressing:
            parts.append("URL_STYLE 'path'")
        if not s.use_ssl:
            parts.append("USE_SSL false")
    return f"CREATE SECRET ({', '.join(parts)});\n"


def _polars_options(props: dict[str, str]) -> dict[str, str]:
    """pyiceberg FileIO properties (what ``pl.scan_iceberg``'s ``storage_options`` takes), secrets as placeholders."""
    keep = ("s3.endpoint", "s3.region", "s3.access-key-id", "s3.path-style-access")  # not lakeml's own tuning
    out = {k: props[k] for k in keep if props.get(k)}
    out.update({k: f"<{k}>" for k in ("s3.secret-access-key", "s3.session-token") if props.get(k)})
    return out


def table_access(store: "TableStore") -> list[TableAccess]:
    """Every lakeml table that exists, with its current metadata location (nothing is created)."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    try:
        have = {t[-1] for t in store.catalog.list_tables(store.namespace)}
    except NoSuchNamespaceError:
        have = set()
    out = []
    for name in sorted(n for n in store.contracts if n in have):
        tbl = store.reload(name)
        snap = tbl.current_snapshot()
        ident = store.identifier(name)
        out.append(TableAccess(name, ident, tbl.location(), tbl.metadata_location,
                               snap.snapshot_id if snap else None,
                               snippets(store.config, ident, tbl.metadata_location)))
    return out
