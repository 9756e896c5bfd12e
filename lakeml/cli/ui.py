"""``lakeml ui``: the portal on localhost, one command (``lakeml server`` on 127.0.0.1, URL printed)."""

from __future__ import annotations

from typing import Optional

import typer

from lakeml.cli.common import CatalogOpt, WarehouseOpt, handle_errors

app = typer.Typer()


@app.command("ui")
@handle_errors
def ui(port: int = typer.Option(5000, "--port", "-p", min=1, max=65535, help="TCP port on 127.0.0.1"),
       open_browser: bool = typer.Option(False, "--open", help="open the portal in the default web browser"),
       catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Open the web portal: serve the lake on http://127.0.0.1:PORT/ and print the URL (Ctrl+C stops it)."""
    from lakeml.server.run import serve
    from lakeml.server.settings import ServerSettings

    settings = ServerSettings(host="127.0.0.1", port=port)
    url = settings.url + "/"
    typer.echo(f"lakeml portal: {url}  (Ctrl+C to stop)")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    serve(settings, catalog=catalog, warehouse=warehouse)
