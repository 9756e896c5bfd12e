"""``lakeml tables`` (where each table's current metadata is, and how other engines read it) and
``lakeml migrate-artifacts`` (move pre-0.2 artifacts out of the ``artifacts`` table's folder)."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer

from lakeml.cli.common import CatalogOpt, Output, OutputOpt, WarehouseOpt, emit, handle_errors, print_json

app = typer.Typer()


class Engine(str, Enum):
    duckdb = "duckdb"
    polars = "polars"
    daft = "daft"
    pyiceberg = "pyiceberg"


def _config(catalog: Optional[str], warehouse: Optional[str]):
    from lakeml.storage.config import resolve

    return resolve(catalog, warehouse=warehouse)


@app.command()
@handle_errors
def tables(engine: Optional[Engine] = typer.Option(None, "--engine", "-e",
                                                   help="print this engine's snippet for every table"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           output: Output = OutputOpt) -> None:
    """List lakeml's tables with their current metadata location and code to read them from
    DuckDB, polars, Daft or pyiceberg (see docs/engines.md)."""
    from lakeml.storage.access import catalog_snippet, table_access
    from lakeml.storage.tables import TableStore

    cfg = _config(catalog, warehouse)
    found = table_access(TableStore(cfg))
    if output == Output.json:
        print_json([t.to_dict() for t in found])
        return
    emit([t.to_dict() for t in found], output, ["identifier", "snapshot_id", "metadata_location"])
    if not found:
        return
    if engine is not None:
        for t in found:
            typer.secho(f"\n# {t.identifier}", bold=True)
            typer.echo(t.snippets[engine.value])
        return
    example = next((t for t in found if t.name == "runs"), found[0])
    typer.secho(f"\nread {example.identifier} from another engine (--engine NAME prints it for every table):",
                bold=True)
    for name, code in example.snippets.items():
        typer.secho(f"# {name}", bold=True)
        typer.echo(code)
    typer.secho("\nthe catalog, with plain pyiceberg:", bold=True)
    typer.echo(catalog_snippet(cfg))


@app.command("migrate-artifacts")
@handle_errors
def migrate_artifacts(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
                      output: Output = OutputOpt) -> None:
    """Move artifacts stored before 0.2 from the `artifacts` table's folder (where an orphan-file
    cleanup would delete them) to the artifact root. Recorded URIs keep resolving; safe to rerun."""
    from lakeml.storage.artifacts import ArtifactStore

    cfg = _config(catalog, warehouse)
    store = ArtifactStore(cfg.artifact_root, cfg.properties, legacy_root=cfg.legacy_artifact_root)
    runs = store.legacy_runs()
    moved = store.migrate_legacy()
    result = {"moved_files": moved, "runs": runs, "from": cfg.legacy_artifact_root, "to": cfg.artifact_root}
    if output == Output.json:
        print_json(result)
    elif not cfg.legacy_artifact_root:
        typer.echo("nothing to move: the artifact root is configured explicitly (lakeml.artifact-root)")
    else:
        typer.echo(f"moved {moved} file(s) of {runs} run(s) from {cfg.legacy_artifact_root} to {cfg.artifact_root}")
