"""CLI: ``lakeml models ...`` (the model registry)."""

from __future__ import annotations

from typing import Any, List, Optional

import typer

from lakeml.cli.common import (
    CatalogOpt,
    Output,
    OutputOpt,
    WarehouseOpt,
    echo,
    emit,
    emit_mapping,
    handle_errors,
    open_lake,
    print_json,
)
from lakeml.errors import InvalidInputError

app = typer.Typer(help="The model registry: list, show, register, alias, deploy, lineage.", no_args_is_help=True)

_VERSION_COLS = ["version", "aliases", "flavor", "run_id", "created_at", "created_by", "description"]
_DEPLOY_COLS = ["model_name", "version", "environment", "service", "service_version", "deployed_at", "deployed_by"]


def _pairs(items: Optional[List[str]], what: str) -> dict[str, str]:
    out = {}
    for item in items or ():
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{what} {item!r} must be KEY=VALUE")
        out[key] = val
    return out


def _version_row(mv: Any) -> dict[str, Any]:
    d = mv.to_dict()
    d["aliases"] = ", ".join(mv.aliases)
    return d


@app.command("list")
@handle_errors
def list_models(query: Optional[str] = typer.Argument(None, help="only models whose name or description has this"),
                catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
                output: Output = OutputOpt) -> None:
    """List registered models with their latest version, aliases and where they run."""
    with open_lake(catalog, warehouse, read_only=True) as lake:
        models = lake.registry.search_models(query)
        deps = lake.registry.deployments.list_deployments()
    rows = []
    for m in models:
        d = m.to_dict()
        d["aliases"] = ", ".join(f"{a}={n}" for a, n in m.aliases.items())
        d["deployed"] = ", ".join(sorted({f"{x.environment}:v{x.version}" for x in deps if x.model_name == m.name}))
        rows.append(d)
    emit(rows, output, ["name", "latest_version", "aliases", "deployed", "updated_at", "description"])


@app.command("show")
@handle_errors
def show(ref: str = typer.Argument(..., help="NAME (the model), NAME@ALIAS or NAME/VERSION (one version)"),
         catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
         output: Output = OutputOpt) -> None:
    """Show a model (its versions, aliases, deployments, gates) or one version of it."""
    with open_lake(catalog, warehouse, read_only=True) as lake:
        if "@" in ref or "/" in ref:
            mv = lake.registry.get_model_version(ref)
            deps = lake.registry.deployments.list_deployments(mv.model_name)
            deps = [d for d in deps if d.version == mv.version]
            if output == Output.json:
                print_json({**mv.to_dict(), "deployments": [d.to_dict() for d in deps]})
                return
            d = _version_row(mv)
            emit_mapping(f"{mv.model_name} version {mv.version}",
                         {k: d[k] for k in ("model_uri", "aliases", "flavor", "run_id", "artifact_path", "source_uri",
                                            "created_at", "created_by", "description")})
            emit_mapping("tags", mv.tags)
            emit_mapping("signature", {k: v for k, v in (mv.signature or {}).items()})
            emit_mapping("requirements", {r: "" for r in mv.requirements})
            emit_mapping("deployed in", {f"{x.environment}/{x.service}": x.service_version or "" for x in deps})
            return
        m = lake.registry.get_model(ref)
        versions = lake.registry.list_model_versions(ref)
        deps = lake.registry.deployments.list_deployments(ref)
    if output == Output.json:
        print_json({**m.to_dict(), "versions": [v.to_dict() for v in versions],
                    "deployments": [d.to_dict() for d in deps]})
        return
    emit_mapping(m.name, {"description": m.description, "latest_version": m.latest_version,
                          "created_at": m.created_at, "created_by": m.created_by, "updated_at": m.updated_at})
    emit_mapping("aliases", m.aliases)
    emit_mapping("tags", m.tags)
    if m.gates:
        from lakeml.registry.gates import Gates

        emit_mapping("gates", {r: "" for r in Gates.from_dict(m.gates).rules()})
    typer.secho("versions", bold=True)
    emit([_version_row(v) for v in versions], output, _VERSION_COLS)
    typer.secho("deployments", bold=True)
    emit([d.to_dict() for d in deps], output, _DEPLOY_COLS)


@app.command("register")
@handle_errors
def register(name: str = typer.Argument(..., help="registered model name (created on its first version)"),
             run_id: Optional[str] = typer.Option(None, "--run-id", "-r", help="run that logged the model"),
             artifact_path: str = typer.Option("model", "--artifact-path", "-p", help="model folder in the run"),
             source_uri: Optional[str] = typer.Option(None, "--source-uri", help="a model folder outside any run"),
             description: Optional[str] = typer.Option(None, "--description", "-d"),
             tag: Optional[List[str]] = typer.Option(None, "--tag", "-t", help="KEY=VALUE, repeatable"),
             catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
             output: Output = OutputOpt) -> None:
    """Register a logged model as the next version of NAME."""
    if run_id is None and source_uri is None:
        raise typer.BadParameter("pass --run-id (and --artifact-path) or --source-uri")
    with open_lake(catalog, warehouse) as lake:
        mv = lake.registry.register_model(name, run_id=run_id, artifact_path=artifact_path, source_uri=source_uri,
                                 description=description, tags=_pairs(tag, "tag"))
    if output == Output.json:
        print_json(mv)
        return
    echo(f"registered {mv.model_uri} (flavor {mv.flavor or 'unknown'}, run {mv.run_id or '-'})")


@app.command("alias")
@handle_errors
def alias(name: str = typer.Argument(...), alias_name: str = typer.Argument(..., metavar="ALIAS"),
          version: Optional[int] = typer.Argument(None, help="version to point the alias at"),
          delete: bool = typer.Option(False, "--delete", help="remove the alias instead"),
          catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
          output: Output = OutputOpt) -> None:
    """Point ALIAS at VERSION (promotion gates apply), or --delete it."""
    if (version is None) != delete:
        raise typer.BadParameter("give a VERSION to set the alias, or --delete (without a version)")
    with open_lake(catalog, warehouse) as lake:
        rec = lake.registry.delete_alias(name, alias_name) if delete else lake.registry.set_alias(name, alias_name, version)
    if output == Output.json:
        print_json(rec)
        return
    if delete:
        echo(f"deleted alias {name}@{alias_name} (was version {rec.previous_version})")
    else:
        echo(f"{name}@{alias_name} -> version {rec.version}")


@app.command("deploy")
@handle_errors
def deploy(name: str = typer.Argument(...), version: int = typer.Argument(...),
           environment: str = typer.Option(..., "--env", "-e", help="prod, staging, ..."),
           service: str = typer.Option(..., "--service", "-s", help="application that serves the model"),
           service_version: Optional[str] = typer.Option(None, "--service-version", "-V"),
           keep_others: bool = typer.Option(False, "--keep-others",
                                            help="do not retire what runs in this environment and service"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           output: Output = OutputOpt) -> None:
    """Record that VERSION of NAME now runs in an environment and service (promotion gates apply)."""
    with open_lake(catalog, warehouse) as lake:
        d = lake.registry.deployments.record_deployment(name, version, environment=environment, service=service,
                                   service_version=service_version, replace=not keep_others)
    if output == Output.json:
        print_json(d)
        return
    sv = f" {d.service_version}" if d.service_version else ""
    echo(f"{name} version {d.version} runs in {d.environment}/{d.service}{sv} (deployment {d.deployment_id})")


@app.command("retire")
@handle_errors
def retire(name: str = typer.Argument(...),
           environment: Optional[str] = typer.Option(None, "--env", "-e"),
           service: Optional[str] = typer.Option(None, "--service", "-s"),
           deployment_id: Optional[str] = typer.Option(None, "--id"),
           reason: Optional[str] = typer.Option(None, "--reason"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           output: Output = OutputOpt) -> None:
    """Mark the matching active deployments of NAME as retired."""
    with open_lake(catalog, warehouse) as lake:
        done = lake.registry.deployments.retire_deployment(name, environment=environment, service=service, deployment_id=deployment_id,
                                      reason=reason)
    emit([d.to_dict() for d in done], output, [*_DEPLOY_COLS, "retired_at"])


@app.command("lineage")
@handle_errors
def lineage(ref: Optional[str] = typer.Argument(None, help="NAME@ALIAS, NAME/VERSION or NAME (latest)"),
            table: Optional[str] = typer.Option(None, "--table", help="reverse: which model versions read TABLE"),
            snapshot_id: Optional[int] = typer.Option(None, "--snapshot-id", help="with --table: that snapshot"),
            catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
            output: Output = OutputOpt) -> None:
    """Where a version comes from (run, params, metrics, code, input snapshots), or --table: what used a table."""
    if (ref is None) == (table is None):
        raise typer.BadParameter("give a model reference, or --table (not both)")
    with open_lake(catalog, warehouse, read_only=True) as lake:
        if table is not None:
            rows = [dict(t.to_dict(), model_uri=t.model_uri, aliases=", ".join(t.aliases),
                         environments=", ".join(t.environments))
                    for t in lake.registry.deployments.models_trained_on(table, snapshot_id=snapshot_id)]
            emit(rows, output, ["model_uri", "aliases", "environments", "run_id", "table", "snapshot_id", "role"])
            return
        lin = lake.registry.deployments.model_lineage(ref)
    if output == Output.json:
        print_json(lin)
        return
    emit_mapping(f"{lin.model_name} version {lin.version}",
                 {"model_uri": lin.model_uri, "aliases": ", ".join(lin.aliases),
                  "deployed in": ", ".join(f"{d.environment}/{d.service}" for d in lin.deployments),
                  "run_id": lin.run_id, "run_name": lin.run_name, "experiment": lin.experiment_name,
                  "git_commit": lin.git_commit, "user": lin.user, "source": lin.source})
    emit_mapping("params", lin.params)
    emit_mapping("metrics", lin.metrics)
    typer.secho("inputs", bold=True)
    emit([i.to_dict() for i in lin.inputs], output, ["role", "kind", "name", "snapshot_id", "digest"])


@app.command("events")
@handle_errors
def events(name: Optional[str] = typer.Argument(None, help="only this model"),
           limit: int = typer.Option(50, "--limit", "-n", min=1, help="newest N events"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           output: Output = OutputOpt) -> None:
    """The registry's audit log: who changed what and when, and every refused promotion."""
    with open_lake(catalog, warehouse, read_only=True) as lake:
        evs = lake.registry.registry_events(name)[-limit:]
    emit([e.to_dict() for e in evs], output,
         ["event_seq", "event_time", "actor", "event_type", "outcome", "entity_key", "message"])


@app.command("tag")
@handle_errors
def tag(name: str = typer.Argument(...), version: int = typer.Argument(...),
        pairs: List[str] = typer.Argument(..., help="KEY=VALUE, e.g. approved_by=alice"),
        catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
        output: Output = OutputOpt) -> None:
    """Set tags on a version (e.g. the approver tag a gate requires)."""
    with open_lake(catalog, warehouse) as lake:
        mv = lake.registry.update_model_version(name, version, tags=_pairs(pairs, "tag"))
    if output == Output.json:
        print_json(mv)
        return
    emit_mapping(f"{mv.model_name} version {mv.version} tags", mv.tags)


@app.command("gates")
@handle_errors
def gates(name: str = typer.Argument(...),
          min_metric: Optional[List[str]] = typer.Option(None, "--min-metric", help="METRIC=VALUE, repeatable"),
          max_metric: Optional[List[str]] = typer.Option(None, "--max-metric", help="METRIC=VALUE, repeatable"),
          require_artifact: Optional[List[str]] = typer.Option(None, "--require-artifact", help="run artifact path"),
          require_tag: Optional[List[str]] = typer.Option(None, "--require-tag",
                                                          help="KEY or KEY=ALLOWED1,ALLOWED2 (version tag)"),
          alias_name: Optional[List[str]] = typer.Option(None, "--alias", help="guard only these aliases"),
          environment: Optional[List[str]] = typer.Option(None, "--env", help="guard only these environments"),
          lifecycle_step: Optional[List[str]] = typer.Option(None, "--lifecycle-step",
                                                             help="BPMN task id that must be done in a model "
                                                                  "project linking the model (e.g. approval)"),
          clear: bool = typer.Option(False, "--clear", help="remove every rule"),
          catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
          output: Output = OutputOpt) -> None:
    """Show the promotion gates of NAME, or set them (replacing the old rules) with the options."""
    setting = clear or any((min_metric, max_metric, require_artifact, require_tag, lifecycle_step))
    with open_lake(catalog, warehouse) as lake:
        if setting:
            def floats(items: Optional[List[str]], what: str) -> dict[str, float]:
                out = {}
                for k, val in _pairs(items, what).items():
                    try:
                        out[k] = float(val)
                    except ValueError:
                        raise InvalidInputError(f"{what} {k}={val!r}: the value must be a number") from None
                return out

            tags: dict[str, Any] = {}
            for item in require_tag or ():
                k, sep, allowed = item.partition("=")
                tags[k] = [a for a in allowed.split(",") if a] if sep else None
            g = lake.registry.set_gates(name, min_metrics=floats(min_metric, "--min-metric"),
                               max_metrics=floats(max_metric, "--max-metric"), required_artifacts=require_artifact,
                               required_tags=tags, aliases=alias_name or None, environments=environment or None,
                               lifecycle_steps=lifecycle_step) \
                if not clear else lake.registry.set_gates(name)
        else:
            g = lake.registry.get_gates(name)
    if output == Output.json:
        print_json(g.to_dict() if g is not None and not g.empty else None)
        return
    if g is None or g.empty:
        echo(f"{name} has no promotion gates")
        return
    scope = {"aliases": ", ".join(g.aliases) if g.aliases is not None else "all",
             "environments": ", ".join(g.environments) if g.environments is not None else "all"}
    emit_mapping(f"gates of {name}", {**{r: "" for r in g.rules()}})
    emit_mapping("guarding", scope)
