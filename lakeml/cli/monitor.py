"""``lakeml monitor run|report``: drift, quality and operations checks per window, alerts, the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lakeml.cli.common import (CatalogOpt, Output, OutputOpt, WarehouseOpt, echo, emit, handle_errors, open_lake,
                               print_json)

app = typer.Typer(help="Monitor served models: drift, quality, operations, alerts (see docs/monitoring.md).",
                  no_args_is_help=True)

ALERT_EXIT = 2  # exit code when alerts fire (1 is an error)


@app.command("run")
@handle_errors
def run(model: Optional[str] = typer.Option(None, "--model", "-m", help="only this registered model"),
        window: str = typer.Option("1h", "--window", help="window size: 1h, 1d, 30m, 15s..."),
        since: Optional[str] = typer.Option(None, "--since", help="only windows from then: 7d back, or an ISO time"),
        until: Optional[str] = typer.Option(None, "--until", help="windows ending by then [default: now]"),
        rules: Optional[Path] = typer.Option(None, "--rules", "-r", help="alert rules YAML file"),
        webhook: Optional[List[str]] = typer.Option(None, "--webhook", help="URL to POST firing alerts to (repeatable)"),
        notify: bool = typer.Option(True, "--notify/--no-notify", help="POST new alerts to the webhooks"),
        min_rows: int = typer.Option(100, "--min-rows", min=0, help="scored rows a window needs for drift checks"),
        output: Output = OutputOpt, catalog: Optional[str] = CatalogOpt,
        warehouse: Optional[str] = WarehouseOpt) -> None:
    """Compute every complete window not computed yet (and windows that got new labels); then the alert
    rules. Exit code 2 when an alert fires."""
    with open_lake(catalog, warehouse) as lake:
        res = lake.monitoring.run(model, window=window, since=since, until=until, rules=rules,
                                  webhooks=webhook or (), notify=notify, min_rows=min_rows)
    if output == Output.json:
        print_json(res.to_dict())
    else:
        echo(f"computed {len(res.computed)} window(s), skipped {len(res.skipped)} already computed, "
             f"{res.rows} result rows")
        for note in res.notes:
            echo(f"note: {note}")
        for a in res.alerts:
            sent = "" if not a.webhooks else " -> " + ", ".join(f"{u} ({s})" for u, s in a.webhooks)
            echo(f"ALERT {a.message}{'' if a.new else ' (already sent)'}{sent}")
    if res.alerts:
        raise typer.Exit(ALERT_EXIT)


@app.command("report")
@handle_errors
def report(model: Optional[str] = typer.Option(None, "--model", "-m", help="only this registered model"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="also write an HTML report with charts here"),
           json_: bool = typer.Option(False, "--json", help="print the status as JSON"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Print the latest status per model version; with -o, write an HTML report (plotly, works offline)."""
    with open_lake(catalog, warehouse, read_only=True) as lake:
        status = lake.monitoring.status(model)
        path = lake.monitoring.report(out, model) if out is not None else None
    if json_:
        print_json(status)
    else:
        emit(status, Output.text, ["model_name", "model_version", "window", "window_start", "status", "requests",
                                   "max_drift", "max_drift_feature", "accuracy", "auc", "mae", "error_rate",
                                   "latency_p99", "alerts"])
    if path is not None:
        echo(f"report written to {path}", err=json_)
