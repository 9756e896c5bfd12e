"""The ``lakeml`` command. Each command group lives in its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(name="lakeml", help="lakeml: experiment tracking and model registry on Iceberg tables.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

# (module, attribute, group name or None to merge its commands at top level)
_GROUPS = [
    ("lakeml.cli.tracking", "app", None),
    ("lakeml.cli.sql", "app", None),
    ("lakeml.cli.models", "app", "models"),
    ("lakeml.cli.health", "app", None),
]

for module, attr, name in _GROUPS:
    sub = getattr(importlib.import_module(module), attr)
    if name is None:
        for cmd in sub.registered_commands:
            app.registered_commands.append(cmd)
        for grp in sub.registered_groups:
            app.registered_groups.append(grp)
    else:
        app.add_typer(sub, name=name)


def main() -> None:  # pragma: no cover
    app()
