"""CLI: ``lakeml models serve|package|promote`` (serving, packaging, the promotion step of CI/CD).

Registered into the ``models`` group (see ``_GROUPS`` in :mod:`lakeml.cli.main`).
"""

from __future__ import annotations

from typing import List, Optional

import typer

from lakeml.cli.common import (
    CatalogOpt,
    Output,
    OutputOpt,
    WarehouseOpt,
    echo,
    handle_errors,
    open_lake,
    print_json,
)

app = typer.Typer(help="Serve, package and promote models.")


@app.command("serve")
@handle_errors
def serve(model_uri: str = typer.Argument(..., metavar="MODEL_URI",
                                          help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH"),
          host: str = typer.Option("127.0.0.1", "--host", help="address to bind"),
          port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="TCP port"),
          workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes"),
          log_predictions: bool = typer.Option(True, "--log-predictions/--no-log-predictions",
                                               help="write every scored row to the predictions table"),
          follow_alias: bool = typer.Option(False, "--follow-alias",
                                            help="serve the alias's new version when it moves (no restart)"),
          poll_interval: float = typer.Option(10.0, "--poll-interval", min=0.05,
                                              help="seconds between alias checks (--follow-alias)"),
          max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="rows one request may carry"),
          commit_interval: float = typer.Option(5.0, "--commit-interval", min=0.1,
                                                help="seconds between commits of the logged predictions"),
          service: str = typer.Option("lakeml-serve", "--service", help="service name (predictions, deployments)"),
          service_version: Optional[str] = typer.Option(None, "--service-version", help="version of this service"),
          environment: Optional[str] = typer.Option(
              None, "--environment", "-e", help="record a deployment of the served version in this environment "
                                                "(prod, staging...); its gates apply"),
          catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Serve a model over HTTP with MLflow's scoring protocol (POST /invocations)."""
    from lakeml.serving.app import ServeOptions
    from lakeml.server.serving import serve as run

    opts = ServeOptions(model_uri=model_uri, catalog=catalog, warehouse=warehouse, host=host, port=port,
                        workers=workers, log_predictions=log_predictions, follow_alias=follow_alias,
                        poll_interval=poll_interval, max_rows=max_rows, service=service,
                        service_version=service_version, environment=environment,
                        commit_interval=commit_interval)
    run(opts)


@app.command("package")
@handle_errors
def package(model_uri: str = typer.Argument(..., metavar="MODEL_URI", help="models:/NAME@ALIAS or models:/NAME/N"),
            out: str = typer.Option(..., "--out", "-o", help="folder to write (must not exist, or be empty)"),
            k8s: bool = typer.Option(False, "--k8s", help="also write k8s/deployment.yaml (Deployment + Service)"),
            kserve: bool = typer.Option(False, "--kserve", help="also write k8s/inferenceservice.yaml (KServe)"),
            image: Optional[str] = typer.Option(None, "--image", help="image name in the manifests "
                                                                      "[default: lakeml-NAME:VERSION]"),
            port: int = typer.Option(8080, "--port", min=1, max=65535, help="port the service listens on"),
            lakeml_requirement: Optional[str] = typer.Option(
                None, "--lakeml-requirement", help="how requirements.txt names lakeml [default: lakeml==<this "
                                                   "version>]; e.g. a wheel path or a git URL"),
            catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
            output: Output = typer.Option(Output.text, "--output", help="text or json (-o is the folder here)"),
            ) -> None:
    """Write a self-contained service folder: model files, pinned requirements, serve.py, Dockerfile."""
    from lakeml.serving.package import package_model

    with open_lake(catalog, warehouse, read_only=True) as lake:
        res = package_model(lake, model_uri, out, k8s=k8s, kserve=kserve, image=image, port=port,
                            lakeml_requirement=lakeml_requirement)
    if output == Output.json:
        print_json(res)
        return
    echo(f"packaged {res['resolved_uri']} into {res['folder']}")
    for f in res["files"]:
        echo(f"  {f}")
    echo(f"build: docker build -t {res['image']} {res['folder']}")


@app.command("promote")
@handle_errors
def promote(name: str = typer.Argument(..., help="registered model"),
            version: int = typer.Option(..., "--version", "-v", min=1, help="version to promote"),
            to: str = typer.Option(..., "--to", help="alias to point at the version, e.g. champion"),
            environment: Optional[str] = typer.Option(
                None, "--environment", "-e", help="also record the deployment in this environment"),
            service: str = typer.Option("lakeml-serve", "--service", help="service of the deployment record"),
            service_version: Optional[str] = typer.Option(None, "--service-version"),
            dry_run: bool = typer.Option(False, "--dry-run", help="only check the gates; change nothing"),
            catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
            output: Output = OutputOpt) -> None:
    """Run the promotion gates; on success point ALIAS at the version (exit 2 listing the failed rules if not)."""
    from lakeml.errors import GateError

    with open_lake(catalog, warehouse) as lake:
        reg = lake.registry
        # the environment's gates first (a dry run), so a refused deployment leaves the alias unmoved
        fails: List[str] = list(reg.check_gates(name, version, environment=environment)) if environment else []
        if dry_run:
            fails += [f for f in reg.check_gates(name, version, alias=to) if f not in fails]
        elif not fails:
            try:  # a refusal here is recorded in the registry's audit log
                reg.set_alias(name, to, version)
                if environment:
                    reg.deployments.record_deployment(name, version, environment=environment, service=service,
                                                      service_version=service_version)
            except GateError as e:
                fails = list(e.failures) or [str(e)]
        gates = reg.get_gates(name)
        checked = [r for r in (gates.rules() if gates is not None and not gates.empty else [])
                   if gates.applies_to(alias=to) or (environment and gates.applies_to(environment=environment))]
    result = {"model_name": name, "version": version, "alias": to, "environment": environment,
              "passed": not fails, "rules": checked, "failed_rules": fails, "dry_run": dry_run}
    if output == Output.json:
        print_json(result)
    elif not fails:
        where = f" and recorded in {environment}/{service}" if environment else ""
        rules = f"{len(checked)} gate rule(s) passed" if checked else "no gate rules apply"
        echo(f"{rules}: {name} version {version} may become @{to}" if dry_run
             else f"promoted {name} version {version} -> @{to}{where} ({rules})")
    else:
        echo(f"promotion refused: {name} version {version} -> @{to}: {len(fails)} gate rule(s) failed:", err=True)
        for f in fails:
            echo(f"  - {f}", err=True)
    if fails:
        raise typer.Exit(2)
