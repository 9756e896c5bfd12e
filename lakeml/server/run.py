"""Start a server process: open the lake, build the app, run uvicorn; commit everything on SIGTERM.

On SIGTERM/SIGINT uvicorn stops accepting connections, lets in-flight requests finish
(``timeout_graceful_shutdown``), and then the lake is closed, which commits every row it holds.
With ``workers > 1`` uvicorn starts N processes that each import :func:`lakeml.server.app.app_from_env`;
they find the lake and settings in the ``LAKEML_SERVER_CONFIG`` variable (JSON) set here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
from typing import Any

from lakeml.errors import ConfigError
from lakeml.server.settings import ServerSettings, is_loopback

ENV_CONFIG = "LAKEML_SERVER_CONFIG"
GRACE_SECONDS = 30
COMMIT_PROCESS_DELAY = 3.0  # seconds after startup before the commit process starts (commits are in-process until then)


def serve(settings: ServerSettings, *, catalog: str | None = None, warehouse: str | None = None,
          namespace: str | None = None, **properties: Any) -> None:
    """Serve until SIGTERM/SIGINT; then uvicorn drains requests and the lake's committer flushes."""
    import uvicorn

    from lakeml.client.lake import connect

    lake = connect(catalog, warehouse=warehouse, namespace=namespace, commit_interval=settings.commit_interval,
                   **properties)
    closer = lake.close
    try:
        # on loopback the tokens are read once the server listens (so /health answers sooner); a public
        # bind must know first whether any exist
        lazy = is_loopback(settings.host) and settings.workers == 1
        auth = check_bind(lake, settings, lazy=lazy)
        if not lazy:
            announce(lake, settings, auth)
        if settings.workers > 1:
            lake.close()  # each worker opens its own
            lake = None
            os.environ[ENV_CONFIG] = json.dumps({"settings": dataclasses.asdict(settings), "catalog": catalog,
                                                 "warehouse": None if warehouse is None else str(warehouse),
                                                 "namespace": namespace, "properties": properties})
            uvicorn.run("lakeml.server.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                        workers=settings.workers, log_level="warning", access_log=False,
                        timeout_graceful_shutdown=GRACE_SECONDS)
            return
        from lakeml.server.app import create_app

        app = create_app(lake, settings, auth=auth)
        closer = close_on_shutdown(app, lake, on_startup=lambda: (auth.refresh(), announce(lake, settings, auth)),
                                   commit_process=commit_process_args(catalog, warehouse, namespace, properties))
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                lifespan="on", access_log=False, timeout_graceful_shutdown=GRACE_SECONDS)
        uvicorn.Server(config).run()  # after a signal uvicorn re-raises it: the lake is closed by then
    finally:
        if lake is not None:
            closer()


def check_bind(lake: Any, settings: ServerSettings, *, lazy: bool = False) -> Any:
    """The server's :class:`~lakeml.server.auth.TokenAuth`; refuses a non-loopback bind without tokens
    (unless ``settings.insecure``) with a :class:`ConfigError`. ``lazy`` (loopback only): read the
    tokens later, on the first request."""
    from lakeml.server.auth import TokenAuth

    if lazy and is_loopback(settings.host):
        return TokenAuth.for_lake(lake, settings, lazy=True)
    auth = TokenAuth.for_lake(lake, settings)
    if auth.last_error is not None:
        raise ConfigError(f"cannot read the server's tokens ({type(auth.last_error).__name__}: {auth.last_error}); "
                          "check the catalog with 'lakeml doctor'") from auth.last_error
    if not is_loopback(settings.host) and not auth.live_tokens and not settings.insecure:
        raise ConfigError(f"refusing to serve on {settings.host} with no token configured, since anyone who can reach it could "
                          "read and change the lake. Create one first ('lakeml server token create --name NAME "
                          "--scope write'), bind 127.0.0.1, or pass --insecure")
    return auth


def announce(lake: Any, settings: ServerSettings, auth: Any) -> None:
    """The one line a server prints when it starts."""
    mode = "tokens" if auth.required else "none"
    where = lake.config.warehouse_dir or lake.config.catalog_name
    print(f"lakeml server on {settings.url} (catalog {where}, auth: {mode}"
          + (f", {settings.workers} workers" if settings.workers > 1 else "") + ")", file=sys.stderr, flush=True)


def app_from_config() -> Any:
    """The app of one worker, from ``LAKEML_SERVER_CONFIG``; its lake closes when the worker stops."""
    from lakeml.client.lake import connect
    from lakeml.server.app import create_app

    raw = os.environ.get(ENV_CONFIG)
    if not raw:
        raise ConfigError(f"{ENV_CONFIG} is not set: start workers with 'lakeml server --workers N'")
    cfg = json.loads(raw)
    settings = ServerSettings(**cfg["settings"])
    lake = connect(cfg.get("catalog"), warehouse=cfg.get("warehouse"), namespace=cfg.get("namespace"),
                   commit_interval=settings.commit_interval, **(cfg.get("properties") or {}))
    app = create_app(lake, settings)
    close_on_shutdown(app, lake, commit_process=commit_process_args(cfg.get("catalog"), cfg.get("warehouse"),
                                                                    cfg.get("namespace"), cfg.get("properties") or {}))
    return app


def commit_process_args(catalog: str | None, warehouse: Any, namespace: str | None,
                        properties: dict[str, Any]) -> dict[str, Any] | None:
    """How the commit process opens the same lake (see :mod:`lakeml.storage.commitproc`); None when
    ``LAKEML_SERVER_COMMIT_PROCESS=0`` keeps the commits in the server process."""
    if os.environ.get("LAKEML_SERVER_COMMIT_PROCESS", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    return {"catalog": catalog, "warehouse": None if warehouse is None else str(warehouse), "namespace": namespace,
            "properties": {k: v for k, v in properties.items() if isinstance(v, (str, int, float, bool))}}


def open_commit_store(catalog: str | None, warehouse: str | None, namespace: str | None,
                      properties: dict[str, Any]) -> tuple[Any, Any]:
    """In the commit process: the lake's table store and its automatic maintainer (no spool of its own)."""
    from lakeml.client.lake import connect
    from lakeml.storage.config import LAKEML_SPOOL_DIR

    lake = connect(catalog, warehouse=warehouse, namespace=namespace, **{**properties, LAKEML_SPOOL_DIR: "off"})
    lake.store.catalog  # noqa: B018 - open it (and import pyiceberg's writer) now, not during the first append
    import pyiceberg.io.pyarrow  # noqa: F401

    return lake.store, getattr(lake.committer, "maintainer", None)


def close_on_shutdown(app: Any, lake: Any, *, on_startup: Any = None, commit_process: dict | None = None) -> Any:
    """Close ``lake`` (commit what it holds) when the app's lifespan ends: after uvicorn has stopped
    accepting and finished the requests in flight. Returns the (idempotent) closing function.
    ``on_startup``: run in a thread once the app has started. ``commit_process``: the arguments of
    :func:`open_commit_store`; the lake's appends then run in a child process (storage/commitproc.py)."""
    inner = app.router.lifespan_context
    lock = threading.Lock()
    done: list[bool] = []

    stopping = threading.Event()

    def child_later() -> None:
        if stopping.wait(COMMIT_PROCESS_DELAY):
            return
        from lakeml.storage.commitproc import ChildAppender

        with lock:
            if not done:
                lake.committer.appender = ChildAppender("lakeml.server.run:open_commit_store", commit_process)

    start_child = threading.Thread(target=child_later, name="lakeml-commit-proc-start", daemon=True)

    def close() -> None:
        stopping.set()
        with lock:
            if not done:
                done.append(True)
                try:
                    lake.close()
                finally:
                    child = lake.committer.appender
                    if child is not None:
                        lake.committer.appender = None
                        child.close()

    @contextlib.asynccontextmanager
    async def lifespan(a: Any):
        try:
            async with inner(a) as state:
                from lakeml.server.gcfreeze import freeze_later

                freeze_later()  # short full collections from a few seconds on (see gcfreeze)
                if commit_process is not None:
                    start_child.start()  # after a delay: the child's imports must not slow the first requests
                if on_startup is not None:
                    threading.Thread(target=on_startup, name="lakeml-server-startup", daemon=True).start()
                yield state
        finally:
            import anyio.to_thread

            await anyio.to_thread.run_sync(close)

    app.router.lifespan_context = lifespan
    return close
