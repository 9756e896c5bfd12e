"""Run the scoring service of ``lakeml models serve`` (the app itself is :mod:`lakeml.serving.app`).

This layer opens the lake (the serving component only receives it), builds the app, and runs
uvicorn; with ``workers`` > 1 each worker process builds its own app from the options passed in
``$LAKEML_SERVE_OPTIONS``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from lakeml.errors import InvalidInputError
from lakeml.serving.app import OPTIONS_ENV, ServeOptions, Service, create_app


def open_service(opts: ServeOptions, *, lake: Any = None, record: bool = True) -> Service:
    """A :class:`Service` for ``opts``; opens (and on close, closes) the lake unless given one.
    A packaged folder served without prediction logging needs no lake at all. A service that opens its
    lake and logs predictions logs them through a child process (:mod:`lakeml.serving.logproc`), unless
    ``LAKEML_SERVE_LOG_PROCESS=0``."""
    on_close = None
    proc = None
    if lake is None and (opts.folder is None or opts.log_predictions):
        from lakeml.client.lake import connect

        props = {"commit_interval": opts.commit_interval, **opts.properties}
        lake = connect(opts.catalog, warehouse=opts.warehouse, **props)
        on_close = lake.close
        if opts.log_predictions and os.environ.get("LAKEML_SERVE_LOG_PROCESS", "1").strip().lower() not in (
                "0", "false", "no", "off"):
            from lakeml.serving.logproc import LogProcess

            proc = LogProcess("lakeml.server.serving:open_log_lake",
                              {"catalog": opts.catalog, "warehouse": None if opts.warehouse is None else str(opts.warehouse),
                               "properties": {k: v for k, v in props.items() if isinstance(v, (str, int, float, bool))}})
    try:
        return Service(opts, lake=lake, record=record, on_close=on_close, log_process=proc)
    except BaseException:
        if proc is not None:
            proc.close()
        if on_close is not None:
            on_close()
        raise


def open_log_lake(catalog: str | None, warehouse: str | None, properties: dict[str, Any]) -> Any:
    """In the prediction log process: the same lake as the service's (its own spool and committer)."""
    from lakeml.client.lake import connect

    lake = connect(catalog, warehouse=warehouse, **properties)
    lake.store.table("predictions")  # open the catalog and the table now, not during the first batch
    import pyiceberg.io.pyarrow  # noqa: F401

    return lake


def build(opts: ServeOptions, *, lake: Any = None) -> Any:
    """The FastAPI app for ``opts``."""
    return create_app(open_service(opts, lake=lake))


def worker_app() -> Any:
    """The app of one uvicorn worker process: options from ``$LAKEML_SERVE_OPTIONS``."""
    raw = os.environ.get(OPTIONS_ENV)
    if not raw:
        raise InvalidInputError(f"${OPTIONS_ENV} is not set; start workers with 'lakeml models serve --workers N'")
    # the parent recorded the deployment; a worker records only the versions it swaps in
    return create_app(open_service(ServeOptions.from_json(raw), record=False))


def serve(opts: ServeOptions) -> None:
    """Run the service until SIGTERM/SIGINT (uvicorn drains the requests, then the logger commits)."""
    import uvicorn

    if opts.workers > 1:
        if opts.environment:  # record the deployment once, before the workers start
            open_service(ServeOptions(**{**asdict(opts), "log_predictions": False, "follow_alias": False})).close()
        os.environ[OPTIONS_ENV] = opts.to_json()
        uvicorn.run("lakeml.server.serving:worker_app", factory=True, host=opts.host, port=opts.port,
                    workers=opts.workers, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
        return
    app = build(opts)
    config = uvicorn.Config(app, host=opts.host, port=opts.port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=30)
    uvicorn.Server(config).run()
