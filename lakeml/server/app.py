"""The ASGI app: ``create_app(lake, settings)`` wires the routers, auth, limits and error handlers."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakeml.errors import LakemlError
from lakeml.server import errors as http_errors
from lakeml.server.errors import ApiError
from lakeml.server.settings import ServerSettings

# Each module exposes ``router`` (a fastapi.APIRouter). Order matters only for overlapping paths.
ROUTERS: list[str] = [
    "lakeml.server.routes.ops",
    "lakeml.server.routes.projects",
    "lakeml.server.api_v1",
    "lakeml.server.routes.sql",
    "lakeml.server.routes.feedback",
    "lakeml.server.mlflow_api",
    "lakeml.server.portal.board",  # pages register with the portal before it is included
    "lakeml.server.portal.monitoring",
    "lakeml.server.portal",
]


def unknown_run_grace(commit_interval: float) -> float:
    """Seconds a request naming an unknown run waits for another replica's commit of it: that replica's
    commit interval twice, plus 5 s for the commit itself on a loaded machine."""
    return 2 * commit_interval + 5


def create_app(lake: Any, settings: ServerSettings | None = None, *, auth: Any = None) -> FastAPI:
    """Build the app over one open lake. ``auth`` defaults to the token store of that lake."""
    settings = settings or ServerSettings()
    app = FastAPI(title="lakeml", version=_version(), docs_url="/docs", redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.state.lake = lake
    if getattr(lake, "tracking", None) is not None:  # replicas: a run made through another one appears
        lake.tracking.unknown_run_grace = unknown_run_grace(settings.commit_interval)  # once that one committed it
    app.state.settings = settings
    if auth is None:
        from lakeml.server.auth import TokenAuth

        auth = TokenAuth.for_lake(lake, settings)
    app.state.auth = auth
    from lakeml.server.metrics import ServerMetrics
    from lakeml.server.middleware import LakemlMiddleware

    app.state.metrics = ServerMetrics(lake)
    app.add_middleware(LakemlMiddleware, app_state=app.state)  # auth, acting user, body limits, metrics
    _install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(importlib.import_module(module).router)
    return app


def app_from_env() -> FastAPI:
    """The app of one ``lakeml server --workers N`` worker: uvicorn imports this factory in each worker
    process; the lake and settings come from the ``LAKEML_SERVER_CONFIG`` JSON that the parent set.
    The lake is closed (committer flushed) when the worker shuts down."""
    from lakeml.server.run import app_from_config

    return app_from_config()


def _version() -> str:
    from lakeml import __version__

    return __version__


def _error(request: Request, status: int, code: str, message: str, field: str | None = None,
           type_: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="lakeml"'} if status == 401 else None
    return JSONResponse(http_errors.body(request.url.path, status, code, message, field, type_), status_code=status,
                        headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(request, exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(LakemlError)
    async def _lakeml_error(request: Request, exc: LakemlError):
        status, code = http_errors.classify(exc)
        return _error(request, status, code, str(exc), getattr(exc, "field", None), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = f"invalid value for {loc or 'the request body'}: {first.get('msg', 'malformed request')}"
        return _error(request, 400, "INVALID_PARAMETER_VALUE", msg, loc or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _error(request, 404, "ENDPOINT_NOT_FOUND",
                          f"no endpoint {request.method} {request.url.path} on this lakeml server")
        if exc.status_code == 405:
            return _error(request, 405, "ENDPOINT_NOT_FOUND",
                          f"{request.method} is not supported on {request.url.path}")
        return _error(request, exc.status_code, "INVALID_PARAMETER_VALUE", str(exc.detail))
