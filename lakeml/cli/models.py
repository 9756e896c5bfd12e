"""CLI: ``lakeml models ...`` (the model registry)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The model registry: list, show, register, alias, deploy, lineage.", no_args_is_help=True)
