"""Open the lake of a test again, from another client or another process.

``lake_spec(lake)`` is a JSON-able description of a test lake (its warehouse folder,
or its catalog properties); ``open_spec(spec)`` connects to it. Worker scripts get
the spec on their command line.
"""

from __future__ import annotations

import json
from typing import Any


def lake_spec(lake: Any) -> dict[str, Any]:
    cfg = lake.config
    if cfg.embedded:
        return {"warehouse": cfg.warehouse_dir, "catalog_name": cfg.catalog_name}
    return {"properties": dict(cfg.properties), "catalog_name": cfg.catalog_name}


def open_spec(spec: dict[str, Any] | str, **kwargs: Any):
    import lakeml

    if isinstance(spec, str):
        spec = json.loads(spec)
    if "warehouse" in spec:
        return lakeml.connect(warehouse=spec["warehouse"], **kwargs)
    return lakeml.connect(**spec["properties"], **kwargs)


def reopen(lake: Any, **kwargs: Any):
    """A second, independent client on the same lake."""
    kwargs.setdefault("commit_interval", 0.2)
    kwargs.setdefault("commit_deadline", 30)
    return open_spec(lake_spec(lake), **kwargs)


def plain_props(spec: dict[str, Any]) -> dict[str, str]:
    """``SqlCatalog(props.pop("catalog_name"), **props)`` properties of the lake's catalog.

    pyiceberg's SQL catalog keys its rows by catalog name, so a plain reader uses lakeml's."""
    from pathlib import Path

    if "warehouse" in spec:
        root = Path(spec["warehouse"])
        props = {"uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": root.as_uri()}
    else:
        props = {k: v for k, v in spec["properties"].items()  # nothing of lakeml's, not even its S3 retry class
                 if k != "type" and not k.startswith("lakeml.") and not str(v).startswith("lakeml.")}
    return {"catalog_name": spec.get("catalog_name", "lakeml"), **props}


def plain_catalog(spec: dict[str, Any]):
    """The lake's catalog opened with pyiceberg alone (no lakeml code)."""
    from pyiceberg.catalog.sql import SqlCatalog

    props = plain_props(spec)
    return SqlCatalog(props.pop("catalog_name"), **props)
