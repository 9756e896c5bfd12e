"""Read runs back with DuckDB: one run, a search, a metric history, experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeml.errors import QueryError
from lakeml.query.filters import order_clause, translate
from lakeml.validation import whole_number

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.engine import DuckEngine

# The views used here are defined in sql/ (runs_latest, experiments_latest, params_latest,
# tags_latest, metric_latest); the client's engine serves them from in-memory copies.
RUNS_LATEST = "SELECT * FROM lakeml.runs_latest {where}"
EXPERIMENTS = "SELECT * FROM lakeml.experiments_latest"
LATEST_METRICS = "SELECT run_id, key, value FROM lakeml.metric_latest {where}"
LATEST_TAGS = "SELECT run_id, key, value FROM lakeml.tags_latest {where}"
PARAMS = "SELECT run_id, key, value FROM lakeml.params_latest {where}"
_RUN_TABLES = ["runs", "params", "metric_latest", "tags", "experiments"]


def experiment_rows(engine: "DuckEngine") -> list[tuple]:
    """(experiment_id, name, artifact_location, created_at, tags) per experiment, oldest first."""
    return engine.rows(f"SELECT experiment_id, name, artifact_location, created_at, tags FROM ({EXPERIMENTS}) "
                       "ORDER BY created_at", tables=["experiments"])[1]


def run_event_row(engine: "DuckEngine", run_id: str) -> dict[str, Any] | None:
    """The latest event row of one run with ``exp_name`` (the experiment's name); None if no such run."""
    cols, rows = engine.rows(
        f"SELECT r.*, e.name AS exp_name FROM ({RUNS_LATEST.format(where='WHERE run_id = $1')}) r "
        f"LEFT JOIN ({EXPERIMENTS}) e USING (experiment_id)", [run_id], tables=["runs", "experiments"])
    return dict(zip(cols, rows[0])) if rows else None


def run_details(engine: "DuckEngine", run_id: str) -> dict[str, Any]:
    where = "WHERE run_id = $1"
    tables = ["params", "metric_latest", "tags", "inputs"]
    with engine.lock:
        engine.refresh(tables)
        q = engine.con
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
    """A polars DataFrame, one row per run: attributes, then params.*, metrics.*, tags.* columns.

    The filter and the order are evaluated on one joined column per key they name; maps
    of all params, metrics and tags are built only for the runs of the page returned.
    """
    import polars as pl

    sql, args = _search_sql(filter_string, order_by, experiment_ids, max_results, offset)
    raw = _run_search(engine.polars, sql, args, filter_string, order_by)
    return _widen(raw, pl)


def search_run_rows(engine: "DuckEngine", *, experiment_ids: list[str] | None, filter_string: str | None,
                    order_by: list[str] | None, max_results: int, offset: int = 0) -> list[dict[str, Any]]:
    """The rows of :func:`search_runs` as dicts with the same keys, in the same order (no polars
    or pyarrow needed: what the CLI prints)."""
    sql, args = _search_sql(filter_string, order_by, experiment_ids, max_results, offset)
    cols, rows = _run_search(engine.rows, sql, args, filter_string, order_by)
    maps = ("params", "metrics", "tags")
    recs = [dict(zip(cols, r)) for r in rows]
    keys = {ent: sorted({kv["key"] for rec in recs for kv in (rec[ent] or []) if kv["key"] is not None})
            for ent in maps}
    out = []
    for rec in recs:
        row = {c: v for c, v in rec.items() if c not in maps}
        for ent in maps:
            got: dict[str, Any] = {}
            for kv in rec[ent] or []:
                if kv["key"] is not None:
                    got.setdefault(kv["key"], kv["value"])
            for k in keys[ent]:
                val = got.get(k)
                if val is not None:
                    val = float(val) if ent == "metrics" else str(val)
                row[f"{ent}.{k}"] = val
        out.append(row)
    return out


def _search_sql(filter_string: str | None, order_by: list[str] | None, experiment_ids: list[str] | None,
                max_results: int, offset: int) -> tuple[str, list[Any]]:
    max_results = whole_number(max_results, "max_results", 1)
    offset = whole_number(offset, "offset", 0)
    joins: dict[tuple[str, str], str] = {}
    sources = {"params": "lakeml.params_latest", "metrics": "lakeml.metric_latest", "tags": "lakeml.tags_latest"}

    def resolve(ent: str, key: str) -> str:
        alias = joins.setdefault((ent, key), f"f{len(joins)}")
        return f"{alias}.value"

    cond, _ = translate(filter_string, resolve)
    order = order_clause(order_by, resolve)
    args: list[Any] = []
    exp_where = ""
    if experiment_ids is not None:
        exp_where = "WHERE experiment_id IN (SELECT unnest($1::VARCHAR[]))"
        args.append(list(experiment_ids))
    ctes = [f"r AS ({RUNS_LATEST.format(where=exp_where)})"]
    join_sql = ""
    for i, ((ent, key), alias) in enumerate(joins.items()):
        args.append(key)
        ctes.append(f"{alias} AS (SELECT run_id, value FROM {sources[ent]} WHERE key = ${len(args)})")
        join_sql += f" LEFT JOIN {alias} USING (run_id)"
    lo, hi = int(offset), int(offset) + int(max_results)
    ctes.append(f"""page AS (
        SELECT r.*, row_number() OVER (ORDER BY {order}, r.run_id) AS __ord FROM r{join_sql} WHERE {cond}
        QUALIFY __ord > {lo} AND __ord <= {hi})""")
    for ent, src in sources.items():
        ctes.append(f"{ent}_l AS (SELECT run_id, list(struct_pack(key := key, value := value) ORDER BY key) AS {ent} "
                    f"FROM {src} SEMI JOIN page USING (run_id) GROUP BY run_id)")
    sql = f"""WITH {', '.join(ctes)}
      SELECT page.run_id, page.experiment_id, page.experiment_name, page.run_name, page.status, page.start_time,
             page.end_time, page.parent_run_id, page.user, page.source, page.git_commit,
             params_l.params, metrics_l.metrics, tags_l.tags
      FROM page LEFT JOIN params_l USING (run_id) LEFT JOIN metrics_l USING (run_id)
      LEFT JOIN tags_l USING (run_id)
      ORDER BY page.__ord"""
    return sql, args


def _run_search(fetch: Any, sql: str, args: list[Any], filter_string: str | None, order_by: list[str] | None) -> Any:
    import duckdb

    try:
        return fetch(sql, args, tables=_RUN_TABLES)
    except duckdb.Error as e:  # filters are checked before, so this names a bug or a broken table
        raise QueryError(f"search_runs failed for filter {filter_string!r} and order {order_by!r}: "
                         f"{type(e).__name__}: {e}") from e


def _widen(raw: Any, pl: Any) -> Any:
    """Spread the params/metrics/tags maps into ``params.<key>`` ... columns (sorted by key)."""
    base = raw.drop(["params", "metrics", "tags"]).with_row_index("__i")
    for ent, dtype in (("params", pl.Utf8), ("metrics", pl.Float64), ("tags", pl.Utf8)):
        col = raw.get_column(ent)
        if col.dtype == pl.Null or raw.height == 0:
            continue
        long = (raw.select(pl.col(ent)).with_row_index("__i").explode(ent).unnest(ent)
                .drop_nulls("key"))
        if long.height == 0:
            continue
        wide = long.pivot(on="key", index="__i", values="value", aggregate_function="first")
        keys = sorted(c for c in wide.columns if c != "__i")
        wide = wide.select(["__i"] + [pl.col(k).cast(dtype).alias(f"{ent}.{k}") for k in keys])
        base = base.join(wide, on="__i", how="left")
    return base.sort("__i").drop("__i")


def _as_dict(row: Any) -> dict:
    """A DuckDB MAP as polars or DuckDB hands it over (a dict, or a list of key/value structs)."""
    if not row:
        return {}
    if isinstance(row, dict):
        return row
    return {kv["key"]: kv["value"] for kv in row}


def metric_history(engine: "DuckEngine", run_id: str, key: str | None) -> Any:
    """key, step, value, timestamp of one run (one metric or all), ordered; reads only the files that hold it."""
    import polars as pl

    return pl.from_arrow(engine.metric_history(run_id, key))
