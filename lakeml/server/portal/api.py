"""The JSON the portal's pages read (``/portal/api/...``). Each route calls the Lake directly."""

from __future__ import annotations

import mimetypes
from typing import Any, Optional, Union

from fastapi import Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lakeml.errors import GateError, InvalidInputError
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.portal import data
from lakeml.server.portal.pages import router

API = "/portal/api"
MAX_COMPARE = 50  # runs of one comparison
PREVIEW_BYTES = 512 * 1024  # artifact preview: first bytes of text, JSON and CSV files
_READ = Depends(require("read"))
_WRITE = Depends(require("write"))


def _dicts(records: list[Any]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in records]


# -- experiments and runs ---------------------------------------------------------------------
@router.get(API + "/experiments")
def experiments(request: Request, metric: str | None = None, mode: str = "max", _: Principal = _READ) -> Any:
    """Experiments with run counts, last activity and the best value of ``metric``."""
    return {"experiments": data.experiments(lake_of(request), metric or None, mode), "metric": metric, "mode": mode}


@router.get(API + "/runs")
def runs(request: Request, experiment: str, filter: str = "", order: str = "", offset: int = Query(0, ge=0),
         limit: int = Query(50, ge=1, le=data.MAX_PAGE), keys: bool = False, _: Principal = _READ) -> Any:
    """One page of runs: MLflow filter syntax in ``filter``, ``order`` like ``metrics.loss ASC``; with
    ``keys=true`` also the experiment's param/metric/tag keys (the first load of the table: one round trip)."""
    lake = lake_of(request)
    page = data.runs_page(lake, experiment, filter_string=filter, order_by=order, offset=offset, limit=limit)
    if keys:
        page["keys"] = data.column_keys(lake, page["experiment"]["experiment_id"])
    return page


@router.get(API + "/columns")
def columns(request: Request, experiment: str, _: Principal = _READ) -> Any:
    """The param, metric and tag keys of an experiment's runs."""
    lake = lake_of(request)
    exp = data.experiment_of(lake, experiment)
    return {"experiment": exp, **data.column_keys(lake, exp["experiment_id"])}


@router.get(API + "/run/{run_id}")
def run(request: Request, run_id: str, _: Principal = _READ) -> Any:
    """A run: attributes, params, latest metrics (with point counts), tags, inputs, registered versions."""
    lake = lake_of(request)
    r = lake.get_run(run_id)
    out = r.to_dict()
    out["duration_s"] = (r.end_time - r.start_time).total_seconds() if r.start_time and r.end_time else None
    out["metric_points"] = lake.query.engine.metric_point_counts(run_id)
    out["versions"] = _dicts(lake.search_model_versions(run_id=run_id))
    return out


@router.get(API + "/run/{run_id}/metric")
def metric(request: Request, run_id: str, key: str, points: int = data.DEFAULT_POINTS, _: Principal = _READ) -> Any:
    """A metric series downsampled on the server (bucket min and max, first and last point kept)."""
    return data.downsample(lake_of(request), run_id, key, points)


@router.get(API + "/curves")
def curves(request: Request, runs: str, key: str, points: int = 800, _: Principal = _READ) -> Any:
    """The downsampled series of one metric for several runs."""
    lake = lake_of(request)
    ids = _run_ids(runs)
    return {"key": key, "series": [data.downsample(lake, rid, key, points) for rid in ids]}


def _run_ids(runs: str) -> list[str]:
    ids = [r.strip() for r in runs.split(",") if r.strip()]
    if not ids or len(ids) > MAX_COMPARE:
        raise InvalidInputError(f"runs must name 1 to {MAX_COMPARE} run ids separated by commas, got {len(ids)}")
    return list(dict.fromkeys(ids))


@router.get(API + "/compare")
def compare(request: Request, runs: str, _: Principal = _READ) -> Any:
    """Several runs side by side; ``differs`` lists the param keys whose values are not all equal."""
    lake = lake_of(request)
    got = [lake.get_run(rid) for rid in _run_ids(runs)]
    params = sorted({k for r in got for k in r.params})
    metrics = sorted({k for r in got for k in r.metrics})
    differs = [k for k in params if len({r.params.get(k) for r in got}) > 1]
    return {"runs": [{"run_id": r.run_id, "run_name": r.run_name, "status": r.status.value,
                      "experiment_id": r.experiment_id, "experiment_name": r.experiment_name,
                      "params": r.params, "metrics": {k: data._json_value(v) for k, v in r.metrics.items()}}
                     for r in got],
            "params": params, "metrics": metrics, "differs": differs}


# -- artifacts --------------------------------------------------------------------------------
@router.get(API + "/run/{run_id}/artifacts")
def artifacts(request: Request, run_id: str, path: str = "", _: Principal = _READ) -> Any:
    """The files and folders under ``path`` of a run's artifacts."""
    lake = lake_of(request)
    return {"path": path, "files": _dicts(lake.list_artifacts(run_id, path or None))}


@router.get(API + "/run/{run_id}/artifact")
def artifact(request: Request, run_id: str, path: str, download: bool = False, _: Principal = _READ) -> Response:
    """One artifact file: inline for the preview (text, JSON, CSV capped, images whole) or as a download."""
    from lakeml.storage.artifacts import clean_artifact_path

    lake = lake_of(request)
    rel = clean_artifact_path(path)
    if not rel:
        raise InvalidInputError("path is empty; name an artifact file such as 'plots/roc.png'")
    blob = lake.artifacts.read_bytes(lake.artifact_uri(run_id) + "/" + rel)
    media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    name = rel.rsplit("/", 1)[-1].replace('"', "")
    if download:
        return Response(blob, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
    if media.startswith("image/") and media != "image/svg+xml":
        return Response(blob, media_type=media)
    # everything else previews as text (never rendered as HTML or SVG by the browser)
    truncated = len(blob) > PREVIEW_BYTES
    return Response(blob[:PREVIEW_BYTES], media_type="text/plain; charset=utf-8",
                    headers={"X-Lakeml-Truncated": "1" if truncated else "0", "X-Content-Type-Options": "nosniff"})


# -- chart layouts ----------------------------------------------------------------------------
@router.get(API + "/layouts")
def layouts(request: Request, experiment: str, _: Principal = _READ) -> Any:
    """The chart layouts the team saved for an experiment."""
    lake = lake_of(request)
    exp = data.experiment_of(lake, experiment)
    return {"experiment": exp, "layouts": data.layouts(lake, exp["experiment_id"])}


@router.post(API + "/layouts")
def save_layout(request: Request, body: dict = Body(...), _: Principal = _WRITE) -> Any:
    """Save ``{"experiment", "name", "spec"}`` (or ``"deleted": true``) to the chart_layouts table."""
    lake = lake_of(request)
    for k in ("experiment", "name"):
        if not isinstance(body.get(k), str):
            raise InvalidInputError(f"{k} must be a string in the body, e.g. {{\"{k}\": \"default\"}}")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise InvalidInputError("spec must be a JSON object describing the charts")
    exp = data.experiment_of(lake, body["experiment"])
    return data.save_layout(lake, exp["experiment_id"], body["name"], spec, deleted=bool(body.get("deleted")))


# -- models -----------------------------------------------------------------------------------
@router.get(API + "/models")
def models(request: Request, _: Principal = _READ) -> Any:
    """Registered models with their latest version, aliases and active deployments."""
    lake = lake_of(request)
    deps = _dicts(lake.list_deployments())
    out = []
    for m in lake.list_models():
        d = m.to_dict()
        d["deployments"] = [x for x in deps if x["model_name"] == m.name]
        out.append(d)
    return {"models": out}


@router.get(API + "/model")
def model(request: Request, name: str, _: Principal = _READ) -> Any:
    """One model: versions, aliases, gates, deployments (all, active first) and its event log."""
    lake = lake_of(request)
    m = lake.get_model(name)
    deps = sorted(_dicts(lake.list_deployments(name, active_only=False)),
                  key=lambda x: (x["retired_at"] is not None, x["environment"], x["service"]))
    events = _dicts(lake.registry_events(name))
    return {"model": m.to_dict(), "versions": _dicts(lake.list_model_versions(name)), "deployments": deps,
            "events": events[::-1][:500]}


@router.get(API + "/lineage")
def lineage(request: Request, name: str, version: int, _: Principal = _READ) -> Any:
    """Version -> run -> input table snapshots."""
    return lake_of(request).model_lineage(name, version).to_dict()


@router.get(API + "/gates")
def gates(request: Request, name: str, version: int, alias: str, _: Principal = _READ) -> Any:
    """Dry run of the model's promotion gates for ``alias`` -> ``version``: the rules, and those failing."""
    lake = lake_of(request)
    g = lake.get_gates(name)
    failing = lake.check_gates(name, version, alias=alias)
    return {"name": name, "version": version, "alias": alias, "failing": failing,
            "rules": _rules(g), "passed": not failing}


def _rules(g: Any) -> list[str]:
    if g is None:
        return []
    out = [f"metric {k} >= {v:g}" for k, v in g.min_metrics.items()]
    out += [f"metric {k} <= {v:g}" for k, v in g.max_metrics.items()]
    out += [f"artifact {a} exists" for a in g.required_artifacts]
    out += [f"tag {k} is set" + (f" to one of {', '.join(vals)}" if vals else "")
            for k, vals in g.required_tags.items()]
    return out


@router.post(API + "/promote")
def promote(request: Request, body: dict = Body(...), _: Principal = _WRITE) -> Any:
    """Point ``{"name", "alias"}`` at ``"version"`` if the gates pass; 409 with the failing rules otherwise."""
    lake = lake_of(request)
    name, alias, version = body.get("name"), body.get("alias"), body.get("version")
    if not isinstance(name, str) or not isinstance(alias, str):
        raise InvalidInputError('name and alias must be strings, e.g. {"name": "churn", "alias": "champion", '
                                '"version": 2}')
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise InvalidInputError(f"version must be a whole number, got {version!r}") from None
    try:
        result = lake.set_alias(name, alias, version)
    except GateError as e:
        return JSONResponse({"error": {"type": "GateError", "code": "INVALID_STATE", "message": str(e),
                                       "failing": e.failures}}, status_code=409)
    return {"alias": result.to_dict(), "failing": []}


# -- SQL export -------------------------------------------------------------------------------
@router.post(API + "/sql/export")
def sql_export(request: Request, sql: str = Body(..., embed=True), format: str = Body("csv", embed=True),
               params: Optional[Union[list, dict]] = Body(None, embed=True), _: Principal = _READ) -> Response:
    """A read-only query's whole result as a CSV or Parquet file, run like ``POST /api/v1/sql`` (same guard,
    row limit and time limit)."""
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from lakeml.server.routes.sql import run_limited

    if format not in ("csv", "parquet"):
        raise InvalidInputError(f"format must be 'csv' or 'parquet', got {format!r}")
    settings = request.app.state.settings
    table = run_limited(lake_of(request), sql, params, limit=settings.sql_row_limit, seconds=settings.sql_time_limit)
    table = table.slice(0, settings.sql_row_limit)
    buf = io.BytesIO()
    if format == "csv":
        pacsv.write_csv(table, buf)
        media = "text/csv"
    else:
        pq.write_table(table, buf)
        media = "application/vnd.apache.parquet"
    return Response(buf.getvalue(), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="query.{format}"'})
