"""Shared CLI helpers: opening the lake, printing tables or JSON, one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from typing import Any, Callable, Iterable

import typer

from lakeml.errors import LakemlError


class Output(str, Enum):
    text = "text"
    json = "json"


OutputOpt = typer.Option(Output.text, "--output", "-o", help="text (a readable table) or json")
CatalogOpt = typer.Option(None, "--catalog", "-c", envvar="LAKEML_CATALOG",
                          help="pyiceberg catalog name (default: the embedded warehouse)")
WarehouseOpt = typer.Option(None, "--warehouse", "-w", envvar="LAKEML_WAREHOUSE",
                            help="local warehouse folder of the embedded default")


def open_lake(catalog: str | None, warehouse: str | None):
    from lakeml.client.lake import connect

    return connect(catalog, warehouse=warehouse) if catalog else connect(warehouse=warehouse)


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """Turn lakeml errors into one clear line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except LakemlError as e:
            fail(f"{type(e).__name__}: {e}")
        except (OSError, ValueError) as e:
            fail(f"{type(e).__name__}: {e}")

    return wrapper


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds")
    return str(v)


def emit(rows: Iterable[dict[str, Any]], output: Output, columns: list[str] | None = None) -> None:
    """Print rows as an aligned text table or as a JSON array."""
    rows = list(rows)
    if output == Output.json:
        from lakeml.entities import _jsonable

        json.dump([_jsonable(r) for r in rows], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if not rows:
        typer.echo("(none)")
        return
    cols = columns or list(rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
