"""``lakeml server``: serve the lake over HTTP (REST, the MLflow API, SQL, the portal)."""

from __future__ import annotations

from typing import Optional

import typer

from lakeml.cli.common import CatalogOpt, WarehouseOpt, handle_errors

app = typer.Typer()
server_app = typer.Typer(help="Serve the lake over HTTP; 'lakeml server token ...' manages access tokens.",
                         invoke_without_command=True, no_args_is_help=False)
app.add_typer(server_app, name="server")


@server_app.callback(invoke_without_command=True)
@handle_errors
def server(ctx: typer.Context,
           host: str = typer.Option("127.0.0.1", "--host", help="address to bind"),
           port: int = typer.Option(5000, "--port", "-p", min=1, max=65535, help="TCP port"),
           workers: int = typer.Option(1, "--workers", min=1, max=64, help="server processes"),
           insecure: bool = typer.Option(False, "--insecure", help="allow a non-loopback bind without tokens"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Serve the lake: lakeml's API under /api/v1, MLflow's REST API under /api/2.0/mlflow, the portal at /."""
    if ctx.invoked_subcommand is not None:
        return
    from lakeml.server.run import serve
    from lakeml.server.settings import ServerSettings

    settings = ServerSettings(host=host, port=port, workers=workers, insecure=insecure)
    serve(settings, catalog=catalog, warehouse=warehouse)
