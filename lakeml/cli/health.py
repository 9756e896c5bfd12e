"""CLI commands (health)."""

from __future__ import annotations

import typer

app = typer.Typer()
