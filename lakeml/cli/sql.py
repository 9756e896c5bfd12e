"""CLI commands: ``lakeml sql`` (a query over the lake) and ``lakeml bi export``."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from lakeml.cli.common import (CatalogOpt, ServerOpt, WarehouseOpt, echo, handle_errors, jsonable, open_lake,
                               print_json, safe, server_of, table_lines)

app = typer.Typer()
bi_app = typer.Typer(help="BI access: a DuckDB file for Superset, Metabase, Grafana, Tableau...",
                     no_args_is_help=True)
app.add_typer(bi_app, name="bi")


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@app.command("sql")
@handle_errors
def sql(query: str = typer.Argument(..., help="SQL over lakeml.<table>, the views of sql/ and <namespace>.<table>; "
                                         "'-' reads it from stdin"),
        fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv, json or parquet"),
        out: Optional[Path] = typer.Option(None, "--out", help="write to this file instead of stdout "
                                                             "(required for parquet)"),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="time travel: an ISO timestamp or a snapshot id"),
        read_write: bool = typer.Option(False, "--read-write", help="allow writes and files outside the lake"),
        max_rows: int = typer.Option(1000, "--max-rows", min=1, help="table format: rows shown at most"),
        catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
        server: Optional[str] = ServerOpt) -> None:
    """Run a SQL query over every experiment (read-only unless --read-write).

    Example: lakeml sql "SELECT * FROM lakeml.leaderboard WHERE experiment = 'churn' LIMIT 10"
    """
    if query == "-":
        query = sys.stdin.read()
    if fmt == Format.parquet and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE.parquet", param_hint="--out")
    http = server_of(server, catalog, warehouse)
    if http is not None:
        if as_of is not None or read_write:
            raise typer.BadParameter("--server runs read-only SQL of the present: drop --as-of/--read-write, or "
                                     "open the lake itself with --warehouse/--catalog", param_hint="--server")
        if fmt in (Format.table, Format.json) and out is None:  # JSON answer: no pyarrow/polars here
            from lakeml.cli.remote import sql_rows

            columns, rows = sql_rows(http, query)
            dicts = [dict(zip(columns, r)) for r in rows]
            if fmt == Format.json:
                print_json(dicts)
                return
            shown = dicts[:max_rows]
            more = f"({len(dicts)} rows, {max_rows} shown)" if len(dicts) > max_rows else f"({len(dicts)} rows)"
            text = "\n".join(table_lines(shown, columns)) + "\n" + more + "\n" if columns else "(no result)\n"
            sys.stdout.write(safe(text, newlines=True) if sys.stdout.isatty() else text)
            return
        import polars as pl
        import pyarrow as pa

        _, _, data = http.request("POST", "/api/v1/sql", json_body={"sql": query, "format": "arrow"})
        _write(pl.from_arrow(pa.ipc.open_stream(pa.py_buffer(data)).read_all()), fmt, out, max_rows)
        return
    import polars as pl

    from lakeml.query.engine import DuckEngine

    with open_lake(catalog, warehouse, read_only=True) as lake:
        # one query per process: plain views, no in-memory copies to build first
        engine = DuckEngine(lake.store, read_write=read_write, cached=False)
        try:
            df = pl.from_arrow(engine.query(query, as_of=as_of))
        finally:
            engine.close()
    _write(df, fmt, out, max_rows)


def _write(df: Any, fmt: Format, out: Path | None, max_rows: int) -> None:
    if fmt == Format.parquet:
        df.write_parquet(out)
        echo(f"{df.height} rows written to {out}", err=True)
        return
    if fmt == Format.csv:
        flat = df.select([c for c in df.columns if not df.schema[c].is_nested()])
        dropped = [c for c in df.columns if df.schema[c].is_nested()]
        if dropped:
            import polars as pl

            flat = df.with_columns([pl.col(c).map_elements(lambda v: json.dumps(jsonable(v), default=str),
                                                           return_dtype=pl.Utf8) for c in dropped])
        text = flat.write_csv()
    elif fmt == Format.json:
        rows = df.to_dicts()
        if out is None:
            print_json(rows)
            return
        text = json.dumps(jsonable(rows), indent=2, default=str) + "\n"
    else:
        rows = df.head(max_rows).to_dicts()
        if not df.columns:
            text = "(no result)\n"
        elif not rows:
            text = "\n".join(table_lines([], df.columns)) + "\n(0 rows)\n"
        else:
            more = f"({df.height} rows, {max_rows} shown)\n" if df.height > max_rows else f"({df.height} rows)\n"
            text = "\n".join(table_lines(rows, df.columns)) + "\n" + more
    if out is None:  # CSV values reach a terminal escaped; piped, they stay exact
        sys.stdout.write(safe(text, newlines=True) if sys.stdout.isatty() else text)
    else:
        out.write_text(text)
        echo(f"{df.height} rows written to {out}", err=True)


@bi_app.command("export")
@handle_errors
def bi_export(path: Path = typer.Argument(..., help="the DuckDB file to write, e.g. lakeml.duckdb"),
              extension_dir: Optional[str] = typer.Option(
                  None, "--extension-dir", help="where to install the DuckDB extensions for the BI tool "
                                                "[default: DuckDB's own, ~/.duckdb/extensions]"),
              overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing DuckDB file at PATH"),
              catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Write a DuckDB database file whose views read the live lakeml tables, for BI tools."""
    with open_lake(catalog, warehouse) as lake:
        exp = lake.query.bi_export(path, extension_directory=extension_dir, overwrite=overwrite)
    echo(f"wrote {exp.path} ({len(exp.views)} views; data stays in the lake and is read live)")
    echo("\nConnect with DuckDB settings (they are not stored in the file):")
    echo(f"  extension_directory = {exp.extension_directory}")
    echo("  unsafe_enable_version_guessing = true")
    echo("\nSQLAlchemy + duckdb-engine (Superset; see docs/sql.md for the others):")
    echo(f"  url:          {exp.sqlalchemy_url}")
    echo(f"  connect_args: {json.dumps(exp.connect_args)}")
    echo("\nInit SQL (Grafana, DBeaver, duckdb CLI):")
    echo("  " + exp.init_sql().replace("\n", "\n  ").rstrip())
