"""Resolve where the lake lives: the embedded default or a pyiceberg catalog profile.

Resolution order for :func:`resolve`:

1. an explicit ``catalog=`` name, else the ``LAKEML_CATALOG`` environment variable:
   a pyiceberg catalog whose properties come from pyiceberg's own config
   (``~/.pyiceberg.yaml``, ``PYICEBERG_CATALOG__<NAME>__<KEY>``), merged with
   the keyword properties given;
2. explicit catalog properties (``uri=...``, ``type=...``);
3. the embedded default: a warehouse folder (``LAKEML_WAREHOUSE``, else
   ``./lakeml-warehouse``) with pyiceberg's SQLite catalog in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lakeml.errors import ConfigError
from lakeml.masking import mask_value

ENV_CATALOG = "LAKEML_CATALOG"
ENV_WAREHOUSE = "LAKEML_WAREHOUSE"
DEFAULT_WAREHOUSE_DIR = "lakeml-warehouse"

# pyiceberg's own property keys (pyiceberg.io.S3_*, mirrored so that importing lakeml stays light;
# tests/test_pyiceberg_compat.py checks they still equal pyiceberg's), parsed in storage/objectstore.py.
S3_ENDPOINT = "s3.endpoint"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"
S3_SESSION_TOKEN = "s3.session-token"
S3_REGION = "s3.region"
S3_FORCE_VIRTUAL_ADDRESSING = "s3.force-virtual-addressing"
S3_CONNECT_TIMEOUT = "s3.connect-timeout"
S3_REQUEST_TIMEOUT = "s3.request-timeout"
S3_RETRY_STRATEGY_IMPL = "s3.retry-strategy-impl"
S3_PATH_STYLE = "s3.path-style-access"  # lakeml's (Java Iceberg's name): "false" means virtual addressing
WAREHOUSE = "warehouse"
# lakeml's keys live in the same property bag, under "lakeml.".
LAKEML_NAMESPACE = "lakeml.namespace"
LAKEML_ARTIFACT_ROOT = "lakeml.artifact-root"
LAKEML_SPOOL_DIR = "lakeml.spool-dir"


@dataclass(frozen=True)
class LakeConfig:
    """Everything needed to open the lake; safe to log (secrets are masked by :meth:`describe`)."""

    catalog_name: str
    properties: dict[str, str]
    namespace: str
    artifact_root: str
    embedded: bool = False
    warehouse_dir: str | None = None  # local folder of the embedded default
    # Where artifacts went before 0.2 (inside the `artifacts` table's folder): still read, never written.
    legacy_artifact_root: str | None = None

    @property
    def warehouse(self) -> str | None:
        return self.properties.get(WAREHOUSE)

    def __repr__(self) -> str:  # never the secrets of ``properties`` (a repr ends up in logs and tracebacks)
        return f"LakeConfig({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"

    def describe(self) -> dict[str, str]:
        """The resolved configuration with secrets masked, for ``lakeml doctor``."""
        out = {"catalog": self.catalog_name, "namespace": self.namespace,
               "artifact_root": self.artifact_root, "embedded": str(self.embedded).lower()}
        for k, v in sorted(self.properties.items()):
            out[k] = mask_value(k, v)
        return out

    def s3_options(self) -> dict[str, str]:
        return {k: v for k, v in self.properties.items() if k.startswith("s3.")}


def _local_uri(path: Path) -> str:
    return path.resolve().as_uri()


def embedded(warehouse_dir: str | os.PathLike | None = None, *, namespace: str | None = None) -> LakeConfig:
    """The zero-config default: a local folder with a SQLite catalog inside."""
    root = Path(warehouse_dir or os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE_DIR).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    props = {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", WAREHOUSE: _local_uri(root)}
    ns = namespace or _default_namespace()
    return LakeConfig(catalog_name="lakeml", properties=props, namespace=ns,
                      artifact_root=default_artifact_root(_local_uri(root), ns), embedded=True,
                      warehouse_dir=str(root), legacy_artifact_root=legacy_artifact_root(_local_uri(root), ns))


def _default_namespace() -> str:
    from lakeml.storage.contract import default_namespace

    return default_namespace()


def resolve(catalog: str | None = None, *, warehouse: str | os.PathLike | None = None,
            namespace: str | None = None, **properties: str) -> LakeConfig:
    """Resolve a :class:`LakeConfig` from arguments, environment and pyiceberg config."""
    name = catalog or os.environ.get(ENV_CATALOG)
    props = {k.replace("__", "."): str(v) for k, v in properties.items() if v is not None}
    lake_opts = {k: v for k, v in props.items() if k.startswith("lakeml.")}  # lakeml's own keys only
    if not name and len(lake_opts) == len(props):
        if warehouse is not None and "://" in str(warehouse) and not str(warehouse).startswith("file://"):
            raise ConfigError(
                f"warehouse={warehouse!r} is remote but no catalog was named; pass catalog='<name>' with a "
                "pyiceberg profile, or uri=... for a SQL catalog")
        wdir = urlparse(str(warehouse)).path if str(warehouse or "").startswith("file://") else warehouse
        cfg = embedded(wdir, namespace=namespace or lake_opts.get(LAKEML_NAMESPACE))
        if lake_opts:
            import dataclasses

            cfg = dataclasses.replace(cfg, properties={**cfg.properties, **lake_opts})
            if lake_opts.get(LAKEML_ARTIFACT_ROOT):  # an explicit root: no legacy default to read
                cfg = dataclasses.replace(cfg, artifact_root=_artifact_root(lake_opts, cfg.namespace),
                                          legacy_artifact_root=None)
        return cfg
    if name:
        from pyiceberg.utils.config import Config

        found = Config().get_catalog_config(name) or {}
        if not found and not (props.keys() - lake_opts.keys()):  # lakeml's own keys configure no catalog
            raise ConfigError(
                f"catalog {name!r} is not configured: add it under 'catalog:' in ~/.pyiceberg.yaml or set "
                f"PYICEBERG_CATALOG__{name.upper()}__URI (see catalog/profiles/ for examples)")
        merged = {str(k): str(v) for k, v in found.items()}
        merged.update(props)
        props = merged
    else:
        name = "lakeml"
    if warehouse is not None:
        props[WAREHOUSE] = str(warehouse)
    ns = namespace or props.get(LAKEML_NAMESPACE) or _default_namespace()
    root = _artifact_root(props, ns)
    legacy = None if props.get(LAKEML_ARTIFACT_ROOT) else legacy_artifact_root(_warehouse_uri(props), ns)
    return LakeConfig(catalog_name=name, properties=props, namespace=ns, artifact_root=root,
                      legacy_artifact_root=legacy)


def default_artifact_root(warehouse_uri: str, namespace: str) -> str:
    """``<warehouse>/<namespace>-artifacts``: a prefix no table owns, so no engine's orphan cleanup
    (which deletes unreferenced files under a table's location) can reach the artifacts."""
    return f"{warehouse_uri.rstrip('/')}/{namespace}-artifacts"


def legacy_artifact_root(warehouse_uri: str, namespace: str) -> str:
    """The default before 0.2, ``<warehouse>/<namespace>/artifacts``: the `artifacts` table's own folder."""
    return f"{warehouse_uri.rstrip('/')}/{namespace}/artifacts"


def _warehouse_uri(props: dict[str, str]) -> str:
    wh = props.get(WAREHOUSE, "")
    if "://" in wh:
        return wh.rstrip("/")
    if wh.startswith("/"):
        return Path(wh).resolve().as_uri()
    raise ConfigError(
        f"cannot place artifacts: the catalog's warehouse {wh!r} is not a URI; set "
        f"'{LAKEML_ARTIFACT_ROOT}' (e.g. s3://bucket/lakeml-artifacts) in the catalog profile")


def _artifact_root(props: dict[str, str], namespace: str) -> str:
    if root := props.get(LAKEML_ARTIFACT_ROOT):
        return root.rstrip("/")
    return default_artifact_root(_warehouse_uri(props), namespace)
