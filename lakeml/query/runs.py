"""Read runs back with DuckDB: one run, a search, a metric history, experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeml.query.filters import order_clause, translate

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.engine import DuckEngine

# Latest state per run; tie-broken by event_seq.
RUNS_LATEST = """
  SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY event_time DESC, event_seq DESC) AS rn
    FROM lakeml.runs {where}) WHERE rn = 1"""
EXPERIMENTS = """
  SELECT experiment_id, any_value(name) AS name, any_value(artifact_location) AS artifact_location,
         min(created_at) AS created_at, any_value(tags) AS tags
  FROM lakeml.experiments GROUP BY experiment_id"""
LATEST_METRICS = """
  SELECT run_id, key, arg_max(value, struct_pack(step, timestamp)) AS value
  FROM lakeml.metrics {where} GROUP BY run_id, key"""
LATEST_TAGS = """
  SELECT run_id, key, value FROM (
    SELECT run_id, key, value, deleted,
           row_number() OVER (PARTITION BY run_id, key ORDER BY logged_at DESC) AS rn
    FROM lakeml.tags {where}) WHERE rn = 1 AND NOT deleted"""
PARAMS = "SELECT run_id, key, any_value(value) AS value FROM lakeml.params {where} GROUP BY run_id, key"


def list_experiments(engine: "DuckEngine") -> Any:
    return engine.polars(f"SELECT * FROM ({EXPERIMENTS}) ORDER BY created_at", tables=["experiments"])


def run_events(engine: "DuckEngine", run_id: str) -> Any:
    return engine.polars(
        f"SELECT r.*, e.name AS exp_name FROM ({RUNS_LATEST.format(where='WHERE run_id = $1')}) r "
        f"LEFT JOIN ({EXPERIMENTS}) e USING (experiment_id)", [run_id], tables=["runs", "experiments"])


def run_details(engine: "DuckEngine", run_id: str) -> dict[str, Any]:
    where = "WHERE run_id = $1"
    tables = ["params", "metrics", "tags", "inputs"]
    engine.refresh(tables)
    q = engine.con
    with engine._lock:
        params = q.execute(PARAMS.format(where=where), [run_id]).fetchall()
        metrics = q.execute(LATEST_METRICS.format(where=where), [run_id]).fetchall()
        tags = q.execute(LATEST_TAGS.format(where=where), [run_id]).fetchall()
        inputs = q.execute("SELECT DISTINCT role, kind, name, table_identifier, snapshot_id, schema_id, uri, "
                           "digest, catalog FROM lakeml.inputs WHERE run_id = $1 ORDER BY name", [run_id]).fetchall()
    return {
        "params": {k: v for _, k, v in params},
        "metrics": {k: v for _, k, v in metrics},
        "tags": {k: v for _, k, v in tags},
        "inputs": inputs,
    }


def search_runs(engine: "DuckEngine", *, experiment_ids: list[str] | None, filter_string: str | None,
                order_by: list[str] | None, max_results: int, offset: int = 0) -> Any:
    """A polars DataFrame, one row per run: attributes, then params.*, metrics.*, tags.* columns."""
    import polars as pl

    cond, _ = translate(filter_string)
    exp_where = ""
    args: list[Any] = []
    if experiment_ids is not None:
        exp_where = "WHERE experiment_id IN (SELECT unnest($1::VARCHAR[]))"
        args.append(list(experiment_ids))
    sql = f"""
      WITH r AS ({RUNS_LATEST.format(where=exp_where)}),
      p AS (SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS params
            FROM ({PARAMS.format(where='WHERE run_id IN (SELECT run_id FROM r)')}) GROUP BY run_id),
      m AS (SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS metrics
            FROM ({LATEST_METRICS.format(where='WHERE run_id IN (SELECT run_id FROM r)')}) GROUP BY run_id),
      t AS (SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS tags
            FROM ({LATEST_TAGS.format(where='WHERE run_id IN (SELECT run_id FROM r)')}) GROUP BY run_id)
      SELECT r.run_id, r.experiment_id, r.experiment_name, r.run_name, r.status, r.start_time, r.end_time,
             r.parent_run_id, r.user, r.source, r.git_commit,
             coalesce(p.params, MAP {{}}) AS params, coalesce(m.metrics, MAP {{}}) AS metrics,
             coalesce(t.tags, MAP {{}}) AS tags
      FROM r LEFT JOIN p USING (run_id) LEFT JOIN m USING (run_id) LEFT JOIN t USING (run_id)
      WHERE {cond}
      ORDER BY {order_clause(order_by)}
      LIMIT {int(max_results)} OFFSET {int(offset)}"""
    sql = sql.replace("params[", "p.params[").replace("metrics[", "m.metrics[").replace("tags[", "t.tags[")
    raw = engine.polars(sql, args, tables=["runs", "params", "metrics", "tags"])
    return _widen(raw, pl)


def _widen(raw: Any, pl: Any) -> Any:
    base = raw.drop(["params", "metrics", "tags"])
    extra: dict[str, list] = {}
    n = raw.height
    for ent in ("params", "metrics", "tags"):
        col = [_as_dict(row) for row in raw[ent].to_list()]
        keys = sorted({k for row in col for k in row})
        for k in keys:
            extra[f"{ent}.{k}"] = [None] * n
        for i, row in enumerate(col):
            for k, val in row.items():
                extra[f"{ent}.{k}"][i] = val
    cols = [pl.Series(name, vals, dtype=pl.Float64 if name.startswith("metrics.") else pl.Utf8)
            for name, vals in extra.items()]
    return base.with_columns(cols) if cols else base


def _as_dict(row: Any) -> dict:
    """A DuckDB MAP as polars hands it over (a dict, or a list of key/value structs)."""
    if not row:
        return {}
    if isinstance(row, dict):
        return row
    return {kv["key"]: kv["value"] for kv in row}


def metric_history(engine: "DuckEngine", run_id: str, key: str | None) -> Any:
    where = "WHERE run_id = $1" + (" AND key = $2" if key is not None else "")
    args = [run_id] + ([key] if key is not None else [])
    return engine.polars(f"SELECT key, step, value, timestamp FROM lakeml.metrics {where} "
                         "ORDER BY key, step, timestamp", args, tables=["metrics"])
