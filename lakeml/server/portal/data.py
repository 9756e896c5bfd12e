"""What the portal's pages show, read straight from the lake: experiments with counts, a page of runs
(paged, sorted and filtered in DuckDB), downsampled metric series and the saved chart layouts."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.ids import experiment_id_for

MAX_PAGE = 500  # runs per page of the runs table
MAX_POINTS = 10_000  # points of one downsampled series
DEFAULT_POINTS = 1500
_RUN_TABLES = ["runs", "params", "metric_latest", "tags", "experiments"]


def _json_value(v: Any) -> Any:
    """A JSON-safe value: datetimes as ISO strings, NaN and inf as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()
    return v


def _rows(lake: Any, sql: str, args: list | None = None, tables: list[str] | None = None) -> list[dict]:
    lake.query.before_read()
    cols, rows = lake.query.engine.rows(sql, args or [], tables=tables)
    return [dict(zip(cols, r)) for r in rows]


# -- experiments ------------------------------------------------------------------------------
def experiments(lake: Any, metric: str | None = None, mode: str = "max") -> list[dict[str, Any]]:
    """Every experiment with its run count, runs by status, last activity and the best value of ``metric``."""
    if mode not in ("min", "max"):
        raise InvalidInputError(f"mode must be 'min' or 'max', got {mode!r}")
    best = "NULL"
    join = ""
    args: list[Any] = []
    if metric:
        from lakeml import validation as v

        v.validate_key(metric, "metric")
        args.append(metric)
        join = "LEFT JOIN (SELECT run_id, value FROM lakeml.metric_latest WHERE key = $1) m USING (run_id)"
        best = f"{mode}(m.value) FILTER (WHERE NOT isnan(m.value))"
    sql = f"""
      WITH r AS (SELECT run_id, experiment_id, status, start_time, end_time, event_time FROM lakeml.runs_latest)
      SELECT e.experiment_id, e.name, e.created_at,
             count(r.run_id) AS runs,
             count(r.run_id) FILTER (WHERE r.status = 'RUNNING') AS running,
             count(r.run_id) FILTER (WHERE r.status = 'FAILED') AS failed,
             greatest(max(r.event_time), e.created_at) AS last_activity,
             {best} AS best
      FROM lakeml.experiments_latest e LEFT JOIN r USING (experiment_id) {join}
      GROUP BY e.experiment_id, e.name, e.created_at
      ORDER BY last_activity DESC NULLS LAST, e.name"""
    out = []
    for row in _rows(lake, sql, args, tables=_RUN_TABLES):
        out.append({k: _json_value(v) for k, v in row.items()})
    return out


def experiment_of(lake: Any, name: str) -> dict[str, Any]:
    """The experiment named ``name`` (NotFoundError otherwise)."""
    exp_id = experiment_id_for(name)
    rows = _rows(lake, "SELECT experiment_id, name FROM lakeml.experiments_latest WHERE experiment_id = $1",
                 [exp_id], tables=["experiments"])
    if not rows:
        raise NotFoundError(f"experiment {name!r} does not exist; open / to see the experiments there are")
    return rows[0]


def column_keys(lake: Any, experiment_id: str) -> dict[str, list[str]]:
    """The param, metric and tag keys the runs of an experiment have (the columns a user can pick)."""
    rows = _rows(lake, """
      WITH r AS (SELECT DISTINCT run_id FROM lakeml.runs WHERE experiment_id = $1)
      SELECT 'params' AS ent, key FROM lakeml.params_latest SEMI JOIN r USING (run_id) GROUP BY key
      UNION ALL SELECT 'metrics', key FROM lakeml.metric_latest SEMI JOIN r USING (run_id) GROUP BY key
      UNION ALL SELECT 'tags', key FROM lakeml.tags_latest SEMI JOIN r USING (run_id) GROUP BY key""",
                 [experiment_id], tables=["runs", "params", "metric_latest", "tags"])
    out: dict[str, list[str]] = {"params": [], "metrics": [], "tags": []}
    for r in rows:
        if not (r["ent"] == "tags" and r["key"].startswith("mlflow.")):
            out[r["ent"]].append(r["key"])
    return {k: sorted(v) for k, v in out.items()}


def count_runs(lake: Any, experiment_id: str, filter_string: str | None) -> int:
    """How many runs of the experiment match the MLflow-style filter."""
    from lakeml.query.filters import translate

    joins: dict[tuple[str, str], str] = {}
    sources = {"params": "lakeml.params_latest", "metrics": "lakeml.metric_latest", "tags": "lakeml.tags_latest"}

    def resolve(ent: str, key: str) -> str:
        return joins.setdefault((ent, key), f"f{len(joins)}") + ".value"

    cond, _ = translate(filter_string, resolve)
    args: list[Any] = [experiment_id]
    ctes = ["r AS (SELECT * FROM lakeml.runs_latest WHERE experiment_id = $1)"]
    join_sql = ""
    for (ent, key), alias in joins.items():
        args.append(key)
        ctes.append(f"{alias} AS (SELECT run_id, value FROM {sources[ent]} WHERE key = ${len(args)})")
        join_sql += f" LEFT JOIN {alias} USING (run_id)"
    rows = _rows(lake, f"WITH {', '.join(ctes)} SELECT count(*) AS n FROM r{join_sql} WHERE {cond}", args,
                 tables=_RUN_TABLES)
    return int(rows[0]["n"])


def runs_page(lake: Any, experiment: str, *, filter_string: str | None = None, order_by: str | None = None,
              offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """One page of an experiment's runs, sorted and filtered in DuckDB, with the total that match."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    exp = experiment_of(lake, experiment)
    order = [o.strip() for o in (order_by or "").split(",") if o.strip()] or ["attributes.start_time DESC"]
    frame = lake.query.search_runs(experiment, filter_string=filter_string or None, order_by=order,
                                   max_results=limit, offset=offset)
    total = count_runs(lake, exp["experiment_id"], filter_string or None)
    rows = []
    for rec in frame.iter_rows(named=True):
        row: dict[str, Any] = {"params": {}, "metrics": {}, "tags": {}}
        for col, val in rec.items():
            ent, dot, key = col.partition(".")
            if dot and ent in row:
                if val is not None:
                    row[ent][key] = _json_value(val)
            else:
                row[col] = _json_value(val)
        start, end = rec.get("start_time"), rec.get("end_time")
        row["duration_s"] = (end - start).total_seconds() if start and end else None
        rows.append(row)
    return {"experiment": exp, "total": total, "offset": offset, "limit": limit, "order_by": order,
            "filter": filter_string or "", "rows": rows}


# -- metric series ----------------------------------------------------------------------------
def downsample(lake: Any, run_id: str, key: str, points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """A metric series cut to about ``points`` points: the steps are split into equal buckets and each
    bucket keeps its lowest and its highest point (spikes survive); the first and last points and the
    NaN/inf points are always kept. Vectorised numpy over the run's history (read through the engine's
    point cache): a 1M-point series takes tens of milliseconds."""
    import numpy as np

    from lakeml import validation as v

    v.validate_run_id(run_id)
    v.validate_key(key, "metric")
    if not 10 <= points <= MAX_POINTS:
        raise InvalidInputError(f"points must be between 10 and {MAX_POINTS}, got {points}")
    lake.query.before_read()
    hist = lake.query.engine.metric_history(run_id, key)
    total = hist.num_rows
    steps = hist.column("step").to_numpy()
    values = hist.column("value").to_numpy().astype(np.float64, copy=False)
    if total > points:
        keep = np.unique(np.concatenate([[0, total - 1], _bucket_extremes(values, max(1, (points - 2) // 2)),
                                         np.flatnonzero(~np.isfinite(values))[:points]]))
        steps, values = steps[keep], values[keep]
    return {"run_id": run_id, "key": key, "total": total, "downsampled": len(steps) < total,
            "steps": steps.tolist(), "values": [_json_value(v) for v in values.tolist()]}


def _bucket_extremes(values: Any, buckets: int) -> Any:
    """Indices of the lowest and the highest finite value of each of ``buckets`` equal slices of ``values``."""
    import numpy as np

    n = len(values)
    edges = (np.arange(buckets + 1, dtype=np.int64) * n) // buckets
    width = int((edges[1:] - edges[:-1]).max())
    idx = edges[:-1, None] + np.arange(width, dtype=np.int64)[None, :]  # one row per bucket
    inside = idx < edges[1:, None]
    idx = np.minimum(idx, n - 1)
    got = values[idx]
    finite = inside & np.isfinite(got)
    rows = np.arange(len(idx))
    lo = idx[rows, np.where(finite, got, np.inf).argmin(axis=1)]
    hi = idx[rows, np.where(finite, got, -np.inf).argmax(axis=1)]
    return np.concatenate([lo, hi])


# -- chart layouts ----------------------------------------------------------------------------
def layouts(lake: Any, experiment_id: str) -> list[dict[str, Any]]:
    """The saved chart layouts of an experiment (latest version of each, deleted ones left out)."""
    rows = _rows(lake, """
      SELECT name, spec, saved_at, saved_by FROM (
        SELECT *, row_number() OVER (PARTITION BY name ORDER BY saved_at DESC) AS rn
        FROM lakeml.chart_layouts WHERE experiment_id = $1)
      WHERE rn = 1 AND NOT deleted ORDER BY name""", [experiment_id], tables=["chart_layouts"])
    return [{"name": r["name"], "spec": json.loads(r["spec"] or "{}"), "saved_at": _json_value(r["saved_at"]),
             "saved_by": r["saved_by"]} for r in rows]


def save_layout(lake: Any, experiment_id: str, name: str, spec: dict[str, Any] | None, *,
                deleted: bool = False) -> dict[str, Any]:
    """Save (or delete) a layout: one appended row of ``chart_layouts``, committed before returning."""
    from lakeml import validation as v
    from lakeml.clock import now_us
    from lakeml.tracking.runinfo import current_user

    v.validate_key(name, "layout")
    text = json.dumps(spec or {}, sort_keys=True)
    if len(text) > 1_000_000:
        raise InvalidInputError(f"layout {name!r} is {len(text)} characters of JSON; the limit is 1000000")
    user = current_user()
    lake.committer.buffer("chart_layouts").add((experiment_id, name, text, now_us(), user, deleted))
    lake.flush()
    return {"name": name, "spec": spec or {}, "saved_by": user, "deleted": deleted}
