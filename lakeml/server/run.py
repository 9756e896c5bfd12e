"""Start a server process: open the lake, build the app, run uvicorn; commit everything on SIGTERM."""

from __future__ import annotations

from typing import Any

from lakeml.server.settings import ServerSettings


def serve(settings: ServerSettings, *, catalog: str | None = None, warehouse: str | None = None,
          namespace: str | None = None, **properties: Any) -> None:
    """Serve until SIGTERM/SIGINT; then uvicorn drains requests and the lake's committer flushes."""
    import uvicorn

    from lakeml.client.lake import connect
    from lakeml.server.app import create_app

    lake = connect(catalog, warehouse=warehouse, namespace=namespace, **properties)
    try:
        app = create_app(lake, settings)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                lifespan="on", access_log=False, timeout_graceful_shutdown=30)
        uvicorn.Server(config).run()
    finally:
        lake.close()
