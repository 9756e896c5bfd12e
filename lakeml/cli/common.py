"""Shared CLI helpers: opening the lake, printing tables or JSON, one-line errors."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

import typer

from lakeml.errors import LakemlError

DEBUG_ENV = "LAKEML_DEBUG"  # set to 1 to see the full traceback of a failing command

# Characters a terminal acts on: C0 and C1 controls, DEL, and the bidi embedding/override/isolate marks.
_UNSAFE = {*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}
_ESCAPES_KEEP_NL = {c: e for c, e in _ESCAPES.items() if c != 0x0A}


def safe(text: Any, *, newlines: bool = False) -> str:
    """``text`` with every control character and bidi override escaped (``\\x1b``, ``\\u202e``), so
    a value printed by the CLI never drives the terminal. ``newlines``: keep line breaks."""
    return str(text).translate(_ESCAPES_KEEP_NL if newlines else _ESCAPES)


def echo(text: Any = "", *, err: bool = False) -> None:
    """``typer.echo`` of text holding values: control characters escaped, line breaks kept."""
    typer.echo(safe(text, newlines=True), err=err)


class Output(str, Enum):
    text = "text"
    json = "json"


OutputOpt = typer.Option(Output.text, "--output", "-o", help="text (a readable table) or json")
CatalogOpt = typer.Option(None, "--catalog", "-c", envvar="LAKEML_CATALOG", show_envvar=True,
                          help="pyiceberg catalog name (default: the embedded warehouse)")
# No envvar here on purpose: the embedded default reads $LAKEML_WAREHOUSE itself, and a warehouse
# from the environment must not override the warehouse of a named catalog.
WarehouseOpt = typer.Option(None, "--warehouse", "-w",
                            help="warehouse folder of the embedded default "
                                 "[default: $LAKEML_WAREHOUSE or ./lakeml-warehouse]")

ServerOpt = typer.Option(None, "--server", envvar="LAKEML_TRACKING_URI", show_envvar=True,
                         help="ask a lakeml server (http://host:5000) instead of opening the lake; its token "
                              "comes from $LAKEML_TRACKING_TOKEN")


def server_of(server: str | None, catalog: str | None, warehouse: str | None) -> Any:
    """An HTTP client (standard library only) for ``--server``, or None to open the lake here
    (an explicit --catalog/--warehouse wins over a server from the environment)."""
    if not server or catalog or warehouse:
        return None
    from lakeml.remote.http import Http

    return Http(server)


def open_lake(catalog: str | None, warehouse: str | None, *, read_only: bool = False, **kwargs: Any):
    """Connect as the library would; ``catalog``/``warehouse`` override the environment.

    ``read_only``: the command only reads, once: its queries use plain views bound on demand
    (no in-memory copies to build first, no pyiceberg on the embedded catalog).
    """
    from lakeml.client.lake import connect
    from lakeml.query.engine import READ_CACHE

    if warehouse is not None:
        kwargs["warehouse"] = warehouse
    if read_only:
        kwargs.setdefault(READ_CACHE, "false")
    return connect(catalog, **kwargs)


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr (one line) and exit with ``code``."""
    from lakeml.masking import mask_secrets

    line = mask_secrets(" ".join(str(message).split()))  # one line, whatever the message held; no secrets
    typer.secho(f"error: {safe(line)}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """Turn any error into one clear line on stderr and exit code 1 (no traceback).

    Set ``LAKEML_DEBUG=1`` to let the traceback through when hunting a bug.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:  # the reader went away (`lakeml runs list | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as e:
            if os.environ.get(DEBUG_ENV):
                raise
            if isinstance(e, LakemlError):
                fail(f"{type(e).__name__}: {e}")
            fail(f"{type(e).__name__}: {e} (unexpected; rerun with {DEBUG_ENV}=1 for the traceback)")

    return wrapper


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (datetimes as ISO strings, NaN/inf as strings)."""
    from lakeml.entities import _jsonable

    if hasattr(value, "to_dict") and not isinstance(value, Mapping):
        value = value.to_dict()
    return _jsonable(value)


def print_json(value: Any) -> None:
    json.dump(jsonable(value), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cell(v: Any) -> str:
    """One value as table text (control characters escaped)."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, Mapping):
        return ", ".join(f"{cell(k)}={cell(x)}" for k, x in v.items())
    if isinstance(v, Enum):
        return safe(v.value)
    return safe(v)


def table_lines(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """An aligned text table: a header, a rule, one line per row."""
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    heads = [safe(c) for c in columns]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(heads)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(heads, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def emit(rows: Iterable[dict[str, Any]], output: Output, columns: list[str] | None = None) -> None:
    """Print rows as an aligned text table or as a JSON array (JSON keeps every field)."""
    rows = list(rows)
    if output == Output.json:
        print_json(rows)
        return
    if not rows:
        typer.echo("(none)")
        return
    for line in table_lines(rows, columns or list(rows[0].keys())):
        typer.echo(line)


def emit_mapping(title: str, values: Mapping[str, Any]) -> None:
    """Print a titled ``key  value`` block (text output only)."""
    typer.secho(safe(title), bold=True)
    if not values:
        typer.echo("  (none)")
        return
    width = max(len(cell(k)) for k in values)
    for k, v in values.items():
        typer.echo(f"  {cell(k).ljust(width)}  {cell(v)}")


_cell = cell  # older name, kept for modules written against it
