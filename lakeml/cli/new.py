"""CLI: ``lakeml new project NAME``: a model repository from the shipped copier template."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lakeml.cli.common import echo, handle_errors
from lakeml.errors import ConflictError, InvalidInputError, MissingDependencyError

app = typer.Typer(help="Create things from templates: a model project repository.", no_args_is_help=True)


def template_dir() -> Path:
    """The shipped copier template of a model project."""
    return Path(__file__).resolve().parent.parent / "templates" / "model_project"


def new_project(name: str, dest: Path | None = None, *, data: dict[str, str] | None = None) -> Path:
    """Render the model project template into ``dest`` (default ``./NAME``); returns the folder."""
    import re

    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$", name or ""):
        raise InvalidInputError(f"project name {name!r} is not valid: use letters, digits, '_' and '-' "
                                "(e.g. churn-model)")
    out = Path(dest) if dest is not None else Path.cwd() / name
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"{out} exists and is not empty; pick another folder with --dest")
    try:
        from copier import run_copy
    except ImportError as e:  # pragma: no cover - copier is a dependency
        raise MissingDependencyError("lakeml new needs copier: pip install copier") from e
    run_copy(str(template_dir()), str(out), data={"project_name": name, **(data or {})}, defaults=True,
             quiet=True, unsafe=False, vcs_ref=None)
    return out


@app.command("project")
@handle_errors
def project(name: str = typer.Argument(..., help="project (repository) name"),
            dest: Optional[Path] = typer.Option(None, "--dest", help="folder to create (default: ./NAME)"),
            data: Optional[List[str]] = typer.Option(None, "--data", help="template answer KEY=VALUE: model_name, "
                                                                          "experiment, metric, min_metric")) -> None:
    """Create a model project repository: training entry point, config, README, CI calling
    'lakeml models promote', and a pyfunc-style model."""
    answers = {}
    for item in data or ():
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--data {item!r} must be KEY=VALUE")
        answers[k] = v
    out = new_project(name, dest, data=answers)
    echo(f"created model project {name} in {out}")
    for f in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        echo(f"  {f}")
