"""lakeml: a lakehouse-native ML metadata store.

Runs, params, metrics, tags, lineage and the model registry are Apache Iceberg
tables; artifacts are objects beside them; DuckDB gives SQL over all of it.

``import lakeml`` stays light: pyiceberg, duckdb and polars load on first use.
"""

from __future__ import annotations

from lakeml.client.fluent import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_lake,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_lake,
    set_tag,
    set_tags,
    start_run,
)
from lakeml.entities import DatasetInput, Experiment, Metric, Param, Run, RunStatus, RunTag
from lakeml.errors import (
    CommitError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    LakemlError,
    NotFoundError,
    QueryError,
    StorageError,
)

__version__ = "0.1.0"

from lakeml import logs as _logs  # noqa: E402 - quiet library logs, LAKEML_LOG_LEVEL (no pyiceberg import)

_logs.setup()


def connect(catalog: str | None = None, **kwargs):
    """Open a lake; see :func:`lakeml.client.lake.connect`."""
    from lakeml.client.lake import connect as _connect

    return _connect(catalog, **kwargs)


# Heavier entry points, imported on first use: name -> module that defines it.
_LAZY = {
    "log_model": "lakeml.client.fluent_models",
    "load_model": "lakeml.client.fluent_models",
    "log_checkpoint": "lakeml.client.fluent_models",
    "load_checkpoint": "lakeml.client.fluent_models",
    "register_model": "lakeml.client.fluent_models",
    "infer_signature": "lakeml.client.fluent_models",
    "ModelSignature": "lakeml.client.fluent_models",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lakeml' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ActiveRun", "CommitError", "ConfigError", "ConflictError", "DatasetInput", "Experiment", "InvalidInputError",
    "LakemlError", "Metric", "NotFoundError", "Param", "QueryError", "Run", "RunStatus", "RunTag", "StorageError",
    "active_run", "connect", "end_run", "flush", "get_lake", "log_artifact", "log_artifacts", "log_input",
    "log_metric", "log_metrics", "log_param", "log_params", "set_lake", "set_tag", "set_tags", "start_run",
]
