"""``lakeml server``: serve the lake over HTTP (REST, the MLflow API, SQL, the portal); ``lakeml server
token create|list|revoke`` manage its access tokens (stored hashed in the ``server_tokens`` table)."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from lakeml.cli.common import CatalogOpt, OutputOpt, Output, WarehouseOpt, echo, handle_errors, open_lake

app = typer.Typer()
server_app = typer.Typer(help="Serve the lake over HTTP; 'lakeml server token ...' manages access tokens.",
                         invoke_without_command=True, no_args_is_help=False)
app.add_typer(server_app, name="server")
token_app = typer.Typer(help="Access tokens of 'lakeml server' (read < write < admin).", no_args_is_help=True)
server_app.add_typer(token_app, name="token")


@server_app.callback(invoke_without_command=True)
@handle_errors
def server(ctx: typer.Context,
           host: str = typer.Option("127.0.0.1", "--host", help="address to bind"),
           port: int = typer.Option(5000, "--port", "-p", min=1, max=65535, help="TCP port"),
           workers: int = typer.Option(1, "--workers", min=1, max=64, help="server processes"),
           insecure: bool = typer.Option(False, "--insecure", help="allow a non-loopback bind without tokens"),
           max_body: Optional[int] = typer.Option(None, "--max-body", min=1024,
                                                  help="largest request body in bytes [default: 64 MiB, "
                                                       "$LAKEML_SERVER_MAX_BODY]"),
           max_artifact: Optional[int] = typer.Option(None, "--max-artifact", min=1024,
                                                      help="largest artifact upload in bytes [default: 10 GiB, "
                                                           "$LAKEML_SERVER_MAX_ARTIFACT]"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Serve the lake: lakeml's API under /api/v1, MLflow's REST API under /api/2.0/mlflow, the portal at /."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"catalog": catalog, "warehouse": warehouse}
        return
    from lakeml.server.run import serve
    from lakeml.server.settings import ServerSettings

    settings = ServerSettings(host=host, port=port, workers=workers, insecure=insecure)
    if max_body is not None:
        settings.max_body_bytes = max_body
    if max_artifact is not None:
        settings.max_artifact_bytes = max_artifact
    serve(settings, catalog=catalog, warehouse=warehouse)


def _tokens(ctx: typer.Context, catalog: Optional[str], warehouse: Optional[str]):
    from lakeml.server.auth import TokenStore

    parent = ctx.obj or {}
    lake = open_lake(catalog or parent.get("catalog"), warehouse or parent.get("warehouse"))
    return lake, TokenStore(lake.store)


def _me() -> Optional[str]:
    from lakeml.tracking.runinfo import current_user

    return current_user()


@token_app.command("create")
@handle_errors
def token_create(ctx: typer.Context,
                 name: str = typer.Option(..., "--name", "-n", help="who uses it; recorded as the user of its writes"),
                 scope: str = typer.Option("read", "--scope", "-s", help="read, write or admin"),
                 role: List[str] = typer.Option([], "--role", "-r", help="a lifecycle role of its user (repeatable)"),
                 description: Optional[str] = typer.Option(None, "--description", "-d", help="what it is for"),
                 output: Output = OutputOpt,
                 catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Create a token and print it once (only its SHA-256 is stored)."""
    lake, tokens = _tokens(ctx, catalog, warehouse)
    try:
        info, token = tokens.create(name, scope, roles=role, created_by=_me(), description=description)
    finally:
        lake.close()
    if output is Output.json:
        echo(json.dumps({**info.public(), "token": token}))
        return
    echo(token)
    echo(f"token {info.name!r} (scope {info.scope}{', roles ' + ', '.join(info.roles) if info.roles else ''}) "
         "created; it is shown only now: keep it in a secret store. Use it as 'Authorization: Bearer <token>' "
         "or MLFLOW_TRACKING_TOKEN.", err=True)


@token_app.command("list")
@handle_errors
def token_list(ctx: typer.Context,
               all_: bool = typer.Option(False, "--all", help="include revoked tokens"),
               output: Output = OutputOpt,
               catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """The tokens (never their secrets)."""
    lake, tokens = _tokens(ctx, catalog, warehouse)
    try:
        rows = [t.public() for t in tokens.list(include_revoked=all_)]
    finally:
        lake.close()
    if output is Output.json:
        echo(json.dumps(rows))
        return
    if not rows:
        echo("no tokens: the server admits anyone on loopback as an admin ('lakeml server token create')")
        return
    cols = ["name", "scope", "roles", "token_id", "created_at", "created_by"] + (["revoked_at"] if all_ else [])
    table = [[", ".join(r[c]) if c == "roles" else ("" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
    echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    for row in table:
        echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@token_app.command("revoke")
@handle_errors
def token_revoke(ctx: typer.Context, name: str = typer.Argument(..., help="the token's name (or its id)"),
                 catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Revoke a token; servers refuse it within a few seconds."""
    lake, tokens = _tokens(ctx, catalog, warehouse)
    try:
        info = tokens.revoke(name, revoked_by=_me())
    finally:
        lake.close()
    echo(f"token {info.name!r} ({info.token_id}) revoked")
