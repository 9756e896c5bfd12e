"""lakeml records -> MLflow's REST JSON, and MLflow's request JSON -> lakeml values.

Every ``*_dict`` function returns what MLflow's server would answer for the same object: the JSON
form of its protos (``mlflow/protos/service.proto``, ``model_registry.proto``), so
``google.protobuf.json_format.ParseDict(d, Run())`` and ``mlflow.entities.Run.from_proto`` accept it.
Timestamps are integer milliseconds; non-finite floats are the proto JSON strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (plain JSON has no literal for them).

Artifact locations are given by the caller: the REST server shows ``mlflow-artifacts:/<experiment
id>`` (served by its artifact proxy, see :func:`proxy_run_artifact_uri`), the ``lakeml://`` plugin shows
the lake's own artifact URIs.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Iterable, Mapping

from lakeml.mlflow_compat import tags as T

ACTIVE = "active"
DELETED = "deleted"
#: the artifact scheme MLflow's clients send to the server's artifact proxy
PROXY_SCHEME = "mlflow-artifacts:"


# -- scalars ----------------------------------------------------------------------------------
def ms(value: datetime | int | None) -> int | None:
    """A datetime (or int milliseconds) as integer milliseconds since the epoch; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(round(value.timestamp() * 1000))
    return int(value)


def float_json(value: Any) -> float | str:
    """A float as proto JSON: finite floats as numbers, NaN/inf as MLflow's strings."""
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def float_from_json(value: Any) -> float:
    """The inverse of :func:`float_json` (also accepts numbers as strings)."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("nan", "infinity", "inf", "+infinity", "+inf", "-infinity", "-inf"):
            return float(low.replace("infinity", "inf"))
    return float(value)


def kv_list(mapping: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """``{"a": "1"}`` -> ``[{"key": "a", "value": "1"}]`` (sorted by key, None values dropped)."""
    return [{"key": str(k), "value": str(v)} for k, v in sorted((mapping or {}).items()) if v is not None]


def kv_map(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """The inverse of :func:`kv_list` (a later key wins)."""
    return {str(i["key"]): ("" if i.get("value") is None else str(i["value"])) for i in (items or [])}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# -- artifact locations -----------------------------------------------------------------------
def proxy_experiment_location(experiment_id: str) -> str:
    """``mlflow-artifacts:/<experiment id>``: an experiment's artifact location behind the proxy."""
    return f"{PROXY_SCHEME}/{experiment_id}"


def proxy_run_artifact_uri(experiment_id: str, run_id: str) -> str:
    """``mlflow-artifacts:/<experiment id>/<run id>/artifacts``: a run's artifact URI behind the proxy.

    The proxy maps ``<experiment id>/<run id>/artifacts/<path>`` onto the run's lakeml artifact
    ``<path>`` (``lake.tracking.artifact_uri(run_id)/<path>``): the same files as native lakeml.
    """
    return f"{PROXY_SCHEME}/{experiment_id}/{run_id}/artifacts"


# -- experiments ------------------------------------------------------------------------------
def experiment_dict(exp: Any, *, artifact_location: str | None = None, lifecycle_stage: str = ACTIVE,
                    last_update_time: datetime | int | None = None) -> dict[str, Any]:
    """MLflow's Experiment JSON of a :class:`lakeml.entities.Experiment`."""
    created = ms(exp.created_at)
    return _drop_none({
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": artifact_location if artifact_location is not None else exp.artifact_location,
        "lifecycle_stage": lifecycle_stage,
        "creation_time": created,
        "last_update_time": ms(last_update_time) if last_update_time is not None else created,
        "tags": kv_list(exp.tags),
    })


# -- runs ---------------------------------------------------------------------------------------
def metric_dict(key: str, value: Any, step: Any = 0, timestamp: datetime | int | None = None,
                **extra: Any) -> dict[str, Any]:
    """One MLflow Metric JSON (``timestamp`` in ms or a datetime)."""
    d = {"key": key, "value": float_json(value), "timestamp": ms(timestamp) or 0, "step": int(step or 0)}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def metric_dicts(points: Any) -> list[dict[str, Any]]:
    """Metric points as MLflow Metric JSON.

    ``points`` is a polars/pandas DataFrame or pyarrow Table with columns key, value, step,
    timestamp (what ``lake.get_metric_history`` returns), an iterable of dicts with those keys, or
    of :class:`lakeml.entities.Metric`.
    """
    if hasattr(points, "to_dicts"):  # polars
        rows = points.to_dicts()
    elif hasattr(points, "to_pylist"):  # pyarrow
        rows = points.to_pylist()
    elif hasattr(points, "to_dict") and hasattr(points, "columns"):  # pandas
        rows = points.to_dict("records")
    else:
        rows = points
    out = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append(metric_dict(r["key"], r["value"], r.get("step", 0), r.get("timestamp")))
        else:
            out.append(metric_dict(r.key, r.value, r.step, r.timestamp))
    return out


def run_info_dict(run: Any, *, artifact_uri: str | None = None, lifecycle_stage: str = ACTIVE) -> dict[str, Any]:
    """MLflow's RunInfo JSON of a :class:`lakeml.entities.Run`."""
    status = getattr(run.status, "value", run.status)
    return _drop_none({
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.run_name,
        "experiment_id": run.experiment_id,
        "user_id": run.user or "",
        "status": status,
        "start_time": ms(run.start_time),
        "end_time": ms(run.end_time),
        "artifact_uri": artifact_uri if artifact_uri is not None else run.artifact_uri,
        "lifecycle_stage": lifecycle_stage,
    })


def run_tags(run: Any) -> dict[str, str]:
    """A run's tags as MLflow shows them, system tags (``mlflow.runName``, ``mlflow.user``...) included."""
    return T.system_tags(run_name=run.run_name, parent_run_id=run.parent_run_id, user=run.user,
                         source=run.source, git_commit=run.git_commit, tags=run.tags)


def run_dict(run: Any, *, metrics: Any = None, artifact_uri: str | None = None,
             lifecycle_stage: str = ACTIVE) -> dict[str, Any]:
    """MLflow's Run JSON (``info``, ``data``, ``inputs``) of a :class:`lakeml.entities.Run`.

    ``metrics``: the latest point of each metric with its step and timestamp (anything
    :func:`metric_dicts` takes, e.g. rows of ``lakeml.metric_latest``); without it the values of
    ``run.metrics`` are shown at step 0 with the run's last time.
    """
    if metrics is None:
        when = run.end_time or run.start_time
        metric_list = [metric_dict(k, val, 0, when) for k, val in sorted(run.metrics.items())]
    else:
        metric_list = metric_dicts(metrics)
    return {
        "info": run_info_dict(run, artifact_uri=artifact_uri, lifecycle_stage=lifecycle_stage),
        "data": {
            "metrics": metric_list,
            "params": kv_list(run.params),
            "tags": kv_list(run_tags(run)),
        },
        "inputs": {"dataset_inputs": [dataset_input_dict(di) for di in run.inputs]},
    }


# -- datasets -----------------------------------------------------------------------------------
#: MLflow source types stored as lakeml kind "iceberg"; everything else is a "file" input by URI
ICEBERG_SOURCE_TYPE = "iceberg"


def dataset_input_dict(di: Any) -> dict[str, Any]:
    """MLflow's DatasetInput JSON of a :class:`lakeml.entities.DatasetInput` (role -> ``mlflow.data.context``)."""
    if di.kind == "iceberg":
        source_type = ICEBERG_SOURCE_TYPE
        source = json.dumps(_drop_none({"table": di.table, "snapshot_id": di.snapshot_id, "schema_id": di.schema_id,
                                        "catalog": di.catalog, "uri": di.uri}), sort_keys=True)
        digest = di.digest or (str(di.snapshot_id) if di.snapshot_id is not None else "")
    elif (di.uri or "").startswith("{"):  # an MLflow source that is not a plain URI, kept as MLflow sent it
        source = di.uri
        source_type = _source_type_of(source)
        digest = di.digest or ""
    else:
        source_type = "local" if (di.uri or "").startswith(("file:", "/")) else _scheme(di.uri) or "local"
        key = "url" if source_type in ("http", "https") else "uri"  # MLflow's HTTPDatasetSource says url
        source = json.dumps({key: di.uri or di.name})
        digest = di.digest or ""
    return {
        "tags": [{"key": T.DATASET_CONTEXT, "value": di.role}],
        "dataset": {"name": di.name, "digest": digest[:36] if source_type != ICEBERG_SOURCE_TYPE else digest,
                    "source_type": source_type, "source": source},
    }


def _source_type_of(source: str) -> str:
    try:
        d = json.loads(source)
    except ValueError:
        return "local"
    if isinstance(d, dict):
        if d.get("source_type"):
            return str(d["source_type"])
        if "tags" in d:
            return "code"
    return "local"


def _scheme(uri: str | None) -> str | None:
    if uri and "://" in uri:
        return uri.split("://", 1)[0]
    return None


def dataset_input_row(d: Mapping[str, Any]) -> dict[str, Any]:
    """MLflow's DatasetInput JSON -> the fields of a lakeml ``inputs`` row (role, kind, name, table,
    snapshot_id, schema_id, uri, digest, catalog). An MLflow dataset becomes a ``file`` input named as
    in MLflow, its source URI (or the source JSON) as ``uri`` and its digest as ``digest``; a dataset
    whose source_type is ``iceberg`` becomes an ``iceberg`` input again."""
    ds = d.get("dataset") or {}
    tags = kv_map(d.get("tags"))
    name = ds.get("name")
    if not name:
        from lakeml.errors import InvalidInputError

        raise InvalidInputError("dataset_inputs[].dataset.name is required: MLflow datasets have a name")
    raw = ds.get("source") or ""
    try:
        src = json.loads(raw) if raw else {}
    except ValueError:
        src = {}
    if not isinstance(src, dict):
        src = {}
    role = tags.get(T.DATASET_CONTEXT) or "train"
    if ds.get("source_type") == ICEBERG_SOURCE_TYPE and src.get("table"):
        snap = src.get("snapshot_id")
        return {"role": role, "kind": "iceberg", "name": name, "table": src.get("table"),
                "snapshot_id": int(snap) if snap is not None else None,
                "schema_id": int(src["schema_id"]) if src.get("schema_id") is not None else None,
                "uri": src.get("uri"), "digest": ds.get("digest") or None, "catalog": src.get("catalog")}
    plain = set(src) <= {"uri", "url", "path"} and (src.get("uri") or src.get("url") or src.get("path"))
    if plain:
        uri = src.get("uri") or src.get("url") or src.get("path")
    elif raw:  # keep MLflow's source JSON (code, http, delta... sources), with its type, as the uri
        uri = raw if ds.get("source_type") in (None, "", "code") else json.dumps(
            {**src, "source_type": ds.get("source_type")}, sort_keys=True) if src else raw
    else:
        uri = None
    return {"role": role, "kind": "file", "name": name, "table": None, "snapshot_id": None, "schema_id": None,
            "uri": uri, "digest": ds.get("digest") or None, "catalog": None}


# -- registry -----------------------------------------------------------------------------------
def model_version_dict(mv: Any, *, source: str | None = None, run_link: str | None = None,
                       current_stage: str = "None") -> dict[str, Any]:
    """MLflow's ModelVersion JSON of a :class:`lakeml.registry.records.ModelVersion` (status READY)."""
    created = ms(mv.created_at)
    return _drop_none({
        "name": mv.model_name,
        "version": str(mv.version),
        "creation_timestamp": created,
        "last_updated_timestamp": ms(mv.updated_at) or created,
        "user_id": mv.updated_by or mv.created_by or "",
        "current_stage": current_stage,
        "description": mv.description or "",
        "source": source if source is not None else mv.source_uri,
        "run_id": mv.run_id or "",
        "status": "READY",
        "tags": kv_list(mv.tags),
        "run_link": run_link or "",
        "aliases": sorted(mv.aliases),
    })


def registered_model_dict(m: Any, *, latest_versions: Iterable[Any] = (), version_source: Any = None) -> dict[str, Any]:
    """MLflow's RegisteredModel JSON of a :class:`lakeml.registry.records.RegisteredModel`.

    ``latest_versions``: ModelVersion records to show as ``latest_versions``; ``version_source``,
    a function ModelVersion -> source URI, as :func:`model_version_dict`'s ``source``.
    """
    created = ms(m.created_at)
    return _drop_none({
        "name": m.name,
        "creation_timestamp": created,
        "last_updated_timestamp": ms(m.updated_at) or created,
        "user_id": m.updated_by or m.created_by or "",
        "description": m.description or "",
        "latest_versions": [model_version_dict(v, source=version_source(v) if version_source else None)
                            for v in latest_versions],
        "tags": kv_list(m.tags),
        "aliases": [{"alias": a, "version": str(ver)} for a, ver in sorted((m.aliases or {}).items())],
    })


def alias_dict(name: str, alias: str, version: int | str) -> dict[str, str]:
    """MLflow's RegisteredModelAlias JSON."""
    return {"alias": alias, "version": str(version)}
