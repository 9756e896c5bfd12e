"""The ``lakeml`` command. Each command group lives in its own module."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

# typer's own (vendored) click exception classes, found through the public BadParameter
_ClickException = {c.__name__: c for c in typer.BadParameter.__mro__}["ClickException"]


class LakemlGroup(TyperGroup):
    """The top-level command: misuse (a bad option value, a missing argument, an out-of-range
    limit) prints one ``error:`` line on stderr and exits 1, like every other failure."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except _ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare 'lakeml' or 'lakeml models': the help
                e.show()
                sys.exit(e.exit_code)
            from lakeml.cli.common import safe

            where = e.ctx.command_path if getattr(e, "ctx", None) is not None else "lakeml"
            line = " ".join(e.format_message().split())
            typer.secho(f"error: {safe(line)} (see '{where} --help')", err=True, fg=typer.colors.RED)
            sys.exit(1)
        except typer.Abort:
            typer.secho("error: aborted", err=True, fg=typer.colors.RED)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


# Plain help (rich_markup_mode=None): rendering it with rich costs more than the rest of a command's start.
app = typer.Typer(name="lakeml", help="lakeml: experiment tracking and model registry on Iceberg tables.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=LakemlGroup,
                  rich_markup_mode=None)

# (module, attribute, group name or None to merge its commands at top level)
_GROUPS = [
    ("lakeml.cli.tracking", "app", None),
    ("lakeml.cli.sql", "app", None),
    ("lakeml.cli.models", "app", "models"),
    ("lakeml.cli.serving", "app", "models"),  # models serve|package|promote
    ("lakeml.cli.health", "app", None),
    ("lakeml.cli.tables", "app", None),
    ("lakeml.cli.server", "app", None),
    ("lakeml.cli.ui", "app", None),
    ("lakeml.cli.monitor", "app", "monitor"),
    ("lakeml.cli.projects", "app", "projects"),
    ("lakeml.cli.projects", "tasks_app", "tasks"),
    ("lakeml.cli.new", "app", "new"),
]

for module, attr, name in _GROUPS:
    sub = getattr(importlib.import_module(module), attr)
    if name is None:
        for cmd in sub.registered_commands:
            app.registered_commands.append(cmd)
        for grp in sub.registered_groups:
            app.registered_groups.append(grp)
    elif any(g.name == name for g in app.registered_groups):  # more commands for a group already added
        group = next(g for g in app.registered_groups if g.name == name).typer_instance
        group.registered_commands.extend(sub.registered_commands)
    else:
        app.add_typer(sub, name=name)


def main() -> None:  # pragma: no cover
    app()
