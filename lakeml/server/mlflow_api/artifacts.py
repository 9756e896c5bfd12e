"""MLflow's artifact proxy: ``/api/2.0/mlflow-artifacts/artifacts[/<path>]`` (list, download, upload, delete).

Downloads stream from storage; uploads stream into a temporary file and are stored only once the
whole body arrived (a client that disconnects mid-upload leaves nothing visible). Paths with ``..``
get a 400. See :mod:`lakeml.mlflow_compat.artifacts` for how paths map onto run artifacts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from lakeml.server.deps import require
from lakeml.server.errors import ApiError

PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
router = APIRouter(tags=["mlflow artifacts"])


def _proxy(request: Request) -> Any:
    from lakeml.server.mlflow_api.endpoints import Services

    return Services.of(request).proxy


def _check(path: str) -> str:
    from lakeml.errors import InvalidInputError
    from lakeml.mlflow_compat.artifacts import clean_proxy_path

    try:
        return clean_proxy_path(path)
    except InvalidInputError as e:
        raise ApiError(400, str(e), field="path") from None


async def list_artifacts(request: Request, path: str | None = None) -> JSONResponse:
    """The direct children of ``path``: ``{"files": [{"path", "is_dir", "file_size"}]}``."""
    proxy = _proxy(request)
    files = await run_in_threadpool(proxy.list, _check(path or ""))
    return JSONResponse({"files": files} if files else {})


async def download(request: Request, artifact_path: str) -> StreamingResponse:
    proxy = _proxy(request)
    stream, size = await run_in_threadpool(proxy.open, _check(artifact_path))
    headers = {"Content-Length": str(size)} if size is not None else {}
    name = artifact_path.rsplit("/", 1)[-1]
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(proxy.iter_file(stream), media_type="application/octet-stream", headers=headers)


async def upload(request: Request, artifact_path: str) -> JSONResponse:
    from lakeml.server.middleware import iter_body

    path = _check(artifact_path)
    proxy = _proxy(request)
    await run_in_threadpool(proxy.place, path)  # 404 for an unknown run before reading the body
    folder = proxy.staging()
    staged = folder / "upload.part"
    try:
        with open(staged, "wb") as out:
            async for chunk in iter_body(request):
                out.write(chunk)
        await run_in_threadpool(proxy.store, path, staged)
    except BaseException:
        proxy.discard(folder)
        raise
    return JSONResponse({})


async def delete(request: Request, artifact_path: str) -> JSONResponse:
    proxy = _proxy(request)
    await run_in_threadpool(proxy.delete, _check(artifact_path))
    return JSONResponse({})


for _prefix in PREFIXES:
    _main = _prefix == PREFIXES[0]
    router.add_api_route(f"{_prefix}/artifacts", list_artifacts, methods=["GET"], include_in_schema=_main,
                         dependencies=[Depends(require("read"))])
    router.add_api_route(f"{_prefix}/artifacts/{{artifact_path:path}}", download, methods=["GET"],
                         include_in_schema=_main, dependencies=[Depends(require("read"))])
    router.add_api_route(f"{_prefix}/artifacts/{{artifact_path:path}}", upload, methods=["PUT"],
                         include_in_schema=_main, dependencies=[Depends(require("write"))])
    router.add_api_route(f"{_prefix}/artifacts/{{artifact_path:path}}", delete, methods=["DELETE"],
                         include_in_schema=_main, dependencies=[Depends(require("write"))])
