"""The local folders lakeml keeps beside a lake: the cache dir and the write spool (one resolver each)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lakeml.storage.config import LAKEML_SPOOL_DIR, WAREHOUSE

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig

ENV_CACHE_DIR = "LAKEML_CACHE_DIR"
ENV_SPOOL_DIR = "LAKEML_SPOOL_DIR"
SPOOL_OFF = {"off", "none", "false", "0", "disabled"}


def cache_dir() -> Path:
    """``LAKEML_CACHE_DIR``, else ``$XDG_CACHE_HOME/lakeml``, else ``~/.cache/lakeml`` (not created)."""
    if d := os.environ.get(ENV_CACHE_DIR):
        return Path(d).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lakeml"


def spool_root(config: "LakeConfig") -> Path | None:
    """Where this lake's spool lives, or None when the spool is switched off.

    ``lakeml.spool-dir`` in the catalog properties, else ``LAKEML_SPOOL_DIR``, wins (``off``
    disables the spool); the embedded default keeps it inside its warehouse folder; any other
    catalog gets ``<cache dir>/spool/<hash of catalog and namespace>``.
    """
    explicit = config.properties.get(LAKEML_SPOOL_DIR) or os.environ.get(ENV_SPOOL_DIR)
    if explicit and explicit.strip().lower() in SPOOL_OFF:
        return None
    if explicit:
        return Path(explicit).expanduser().resolve() / lake_hash(config)
    if config.embedded and config.warehouse_dir:
        return Path(config.warehouse_dir) / ".lakeml-spool" / config.namespace
    return cache_dir() / "spool" / lake_hash(config)


def lake_hash(config: "LakeConfig") -> str:
    """A short stable name for (catalog, its uri, warehouse, namespace)."""
    ident = "|".join([config.catalog_name, config.properties.get("uri", ""),
                      config.properties.get(WAREHOUSE, ""), config.namespace])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]
