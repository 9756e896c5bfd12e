"""CLI commands for tracking: ``init``, ``experiments list``, ``runs list|show``, ``doctor``, ``demo``."""

from __future__ import annotations

import math
from typing import Any, List, Optional

import typer

from lakeml.cli.common import (
    CatalogOpt,
    Output,
    OutputOpt,
    ServerOpt,
    WarehouseOpt,
    echo,
    emit,
    emit_mapping,
    handle_errors,
    open_lake,
    print_json,
    safe,
    server_of,
)

app = typer.Typer()
experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list them with a filter, show one in full.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")


@app.command()
@handle_errors
def init(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
         output: Output = OutputOpt) -> None:
    """Create the lakeml tables (or bring them up to date); safe to run again."""
    with open_lake(catalog, warehouse) as lake:
        tables = lake.init()
        cfg = lake.config
    if output == Output.json:
        print_json({"catalog": cfg.catalog_name, "namespace": cfg.namespace, "tables": tables,
                    "artifact_root": cfg.artifact_root})
        return
    echo(f"lakeml tables ready in catalog {cfg.catalog_name!r}, namespace {cfg.namespace!r}:")
    for t in tables:
        echo(f"  {t}")
    echo(f"artifacts go to {cfg.artifact_root}")


# -- experiments --------------------------------------------------------------------------------

@experiments_app.command("list")
@handle_errors
def experiments_list(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
                     output: Output = OutputOpt, server: Optional[str] = ServerOpt) -> None:
    """List experiments with their number of runs."""
    http = server_of(server, catalog, warehouse)
    if http is not None:
        from lakeml.cli import remote

        emit(remote.experiments(http), output, ["experiment_id", "name", "runs", "created_at", "artifact_location"])
        return
    with open_lake(catalog, warehouse, read_only=True) as lake:
        exps = lake.tracking.list_experiments()
        counts = _run_counts(lake) if exps else {}
    rows = [{"experiment_id": e.experiment_id, "name": e.name, "runs": counts.get(e.experiment_id, 0),
             "created_at": e.created_at, "artifact_location": e.artifact_location, "tags": e.tags}
            for e in exps]
    emit(rows, output, ["experiment_id", "name", "runs", "created_at", "artifact_location"])


def _run_counts(lake: Any) -> dict[str, int]:
    _, rows = lake.engine.rows("SELECT experiment_id, count(DISTINCT run_id) AS n FROM lakeml.runs GROUP BY 1",
                               tables=["runs"])
    return dict(rows)


# -- runs ---------------------------------------------------------------------------------------

_RUN_COLUMNS = ["run_id", "experiment", "run_name", "status", "start_time", "duration"]


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    """A flat search_runs row -> attributes plus params/metrics/tags dicts (absent keys dropped)."""
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"params": {}, "metrics": {}, "tags": {}}
    for k, v in row.items():
        ent, dot, key = k.partition(".")
        if dot and ent in nested:
            if v is not None:
                nested[ent][key] = v
        else:
            out[k] = v
    out.update(nested)
    return out


def _duration(start: Any, end: Any) -> str | None:
    if start is None or end is None:
        return None
    s = (end - start).total_seconds()
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def _referenced(texts: list[str]) -> list[str]:
    """params./metrics./tags. columns that a filter or order-by names, in order of appearance."""
    import re

    found: list[str] = []
    for text in texts:
        for m in re.finditer(r"\b(metrics|params|tags)\.(`[^`]+`|\"[^\"]+\"|[\w\-./:]+)", text):
            col = m.group(1) + "." + m.group(2).strip("`\"")
            if col not in found:
                found.append(col)
    return found


@runs_app.command("list")
@handle_errors
def runs_list(
    experiment: List[str] = typer.Option([], "--experiment", "-e", help="experiment name (repeatable)"),
    filter_string: Optional[str] = typer.Option(
        None, "--filter", "-f", help="MLflow-style filter, e.g. \"metrics.val_auc > 0.9 AND params.max_depth = '3'\""),
    order_by: List[str] = typer.Option([], "--order-by", help="e.g. 'metrics.val_auc DESC' (repeatable)"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="maximum number of runs"),
    columns: List[str] = typer.Option([], "--column", "-C",
                                      help="extra column for the text table, e.g. params.lr (repeatable)"),
    catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt, output: Output = OutputOpt,
    server: Optional[str] = ServerOpt,
) -> None:
    """List runs, newest first (or by --order-by). The text table adds any metric, param or tag column
    that the filter or the order names."""
    from lakeml import validation
    from lakeml.ids import experiment_id_for

    ids = [experiment_id_for(validation.validate_name(n)) for n in experiment] if experiment else None
    http = server_of(server, catalog, warehouse)
    if http is not None:
        from lakeml.cli import remote

        found = remote.runs(http, experiment, filter_string, order_by, limit)
    else:
        from lakeml.query.runs import search_run_rows

        with open_lake(catalog, warehouse, read_only=True) as lake:
            lake.query.before_read()
            found = search_run_rows(lake.engine, experiment_ids=ids, filter_string=filter_string,
                                    order_by=order_by or None, max_results=limit)
    rows = []
    for r in found:
        r["experiment"] = r.get("experiment_name") or r.get("experiment_id")
        r["duration"] = _duration(r.get("start_time"), r.get("end_time"))
        rows.append(r)
    if output == Output.json:
        emit([_nest({k: v for k, v in r.items() if k not in ("experiment", "duration")}) for r in rows], output)
        return
    extra = [c for c in [*columns, *_referenced([filter_string or "", *order_by])] if c not in _RUN_COLUMNS]
    emit(rows, output, _RUN_COLUMNS + list(dict.fromkeys(extra)))


@runs_app.command("show")
@handle_errors
def runs_show(run_id: str = typer.Argument(..., help="the run id (see 'lakeml runs list')"),
              catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
              output: Output = OutputOpt, server: Optional[str] = ServerOpt) -> None:
    """Show one run: attributes, params, latest metrics, tags, inputs and artifacts."""
    http = server_of(server, catalog, warehouse)
    if http is not None:
        from lakeml import validation
        from lakeml.cli import remote

        run, artifacts, steps = remote.run_details(http, validation.validate_run_id(run_id))
    else:
        with open_lake(catalog, warehouse, read_only=True) as lake:
            run = lake.tracking.get_run(run_id)
            artifacts = _all_artifacts(lake, run_id)
            steps = lake.engine.metric_point_counts(run_id)
    if output == Output.json:
        d = run.to_dict()
        d["artifacts"] = [a.to_dict() for a in artifacts]
        d["metric_points"] = steps
        print_json(d)
        return
    attrs = {k: v for k, v in run.to_dict().items() if k not in ("params", "metrics", "tags", "inputs")}
    attrs = {k: getattr(run, k) if k in ("start_time", "end_time") else v for k, v in attrs.items()}
    emit_mapping(f"run {run.run_id}", {k: v for k, v in attrs.items() if v is not None and k != "run_id"})
    emit_mapping("params", dict(sorted(run.params.items())))
    emit_mapping("metrics (latest value, points logged)",
                 {k: f"{_num(v)}  ({steps.get(k, 0)} points)" for k, v in sorted(run.metrics.items())})
    emit_mapping("tags", dict(sorted(run.tags.items())))
    emit_mapping("inputs", {f"{i.role}: {i.name}": (f"snapshot {i.snapshot_id}, schema {i.schema_id}"
                                                   if i.kind == "iceberg" else f"{i.uri} {i.digest}")
                            for i in run.inputs})
    emit_mapping("artifacts", {a.path: f"{a.size} bytes" for a in artifacts})


def _all_artifacts(lake: Any, run_id: str, path: str = "") -> list:
    """Every artifact file of the run, folders walked."""
    out = []
    for a in lake.tracking.list_artifacts(run_id, path or None):
        out.extend(_all_artifacts(lake, run_id, a.path) if a.is_dir else [a])
    return out


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else str(v)


# -- doctor -------------------------------------------------------------------------------------

@app.command()
@handle_errors
def doctor(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="seconds to wait for the object store"),
           output: Output = OutputOpt) -> None:
    """Show the resolved configuration and check the catalog, the tables, storage access and DuckDB."""
    from lakeml.cli.doctor import run_checks

    report = run_checks(catalog, warehouse, timeout=timeout)
    if output == Output.json:
        print_json(report)
    else:
        emit_mapping("configuration", report["config"])
        typer.secho("checks", bold=True)
        width = max(len(c["name"]) for c in report["checks"])
        for c in report["checks"]:
            mark = typer.style(" OK " if c["ok"] else "FAIL", fg=typer.colors.GREEN if c["ok"] else typer.colors.RED,
                               bold=True)
            if c.get("warn"):
                mark = typer.style("WARN", fg=typer.colors.YELLOW, bold=True)
            typer.echo(f"  {mark}  {safe(c['name']).ljust(width)}  {safe(c['detail'])}")
        failed = [c["name"] for c in report["checks"] if not c["ok"]]
        echo("all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}")
    if not report["ok"]:
        raise typer.Exit(1)


# -- demo ---------------------------------------------------------------------------------------

@app.command()
@handle_errors
def demo(experiment: str = typer.Option("demo", "--experiment", "-e", help="experiment to log into"),
         catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
         output: Output = OutputOpt) -> None:
    """Train a few scikit-learn models on a bundled data set, log everything, print a leaderboard."""
    from lakeml.cli.demo import run_demo

    def progress(msg: str) -> None:
        echo(msg, err=output == Output.json)

    with open_lake(catalog, warehouse) as lake:
        progress(f"logging into {lake.config.catalog_name}.{lake.config.namespace} "
                 f"(artifacts: {lake.config.artifact_root})")
        result = run_demo(lake, experiment=experiment, progress=progress)
    if output == Output.json:
        print_json(result.to_dict())
        return
    echo("")
    typer.secho(safe(f"leaderboard of experiment {result.experiment!r} (sweep run {result.parent_run_id})"), bold=True)
    emit(result.leaderboard, output,
         ["rank", "run_name", "val_auc", "val_accuracy", "val_loss", "max_depth", "learning_rate", "run_id"])
    if result.champion:
        c = result.champion
        echo(f"registered the best model as {c['model']} version {c['version']} with alias "
                   f"'{c['alias']}': load it with lakeml.load_model({c['uri']!r})")
    best = result.leaderboard[0]["run_id"] if result.leaderboard else "<run id>"
    echo(f"\ndone in {result.seconds:.1f} s. Next:\n"
               f"  lakeml runs list -e {experiment} --order-by 'metrics.val_auc DESC'\n"
               f"  lakeml runs show {best}\n"
               f"  lakeml models show {result.champion['model'] + '@champion' if result.champion else '<model>'}\n"
               f"  lakeml sql \"SELECT * FROM lakeml.leaderboard LIMIT 5\"")
