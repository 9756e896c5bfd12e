"""Run artifacts: ``PUT``/``GET /api/v1/artifacts/{run_id}/{path}`` (streaming both ways) and
``GET /api/v1/artifacts/{run_id}?path=`` (list).

An upload streams into a private temporary folder of the server; only once the body is complete is
the file stored under the run (and recorded in the ``artifacts`` table). A client that disconnects
mid-upload leaves nothing visible.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from lakeml import validation as v
from lakeml.errors import InvalidInputError
from lakeml.server.api_v1.common import ingest_of, jsonable
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError
from lakeml.storage.artifacts import clean_artifact_path

PREFIX = "/api/v1/artifacts/"
router = APIRouter(tags=["artifacts"])

try:  # uploads may be as large as max_artifact_bytes, not max_body_bytes
    from lakeml.server.middleware import allow_large_bodies

    allow_large_bodies(PREFIX)
except ImportError:  # pragma: no cover - a server without the middleware
    pass


def _checked(run_id: str, path: str) -> str:
    try:
        v.validate_run_id(run_id)
    except ValueError as e:
        raise ApiError(400, str(e), field="run_id") from None
    try:
        return clean_artifact_path(path)
    except InvalidInputError as e:
        raise ApiError(400, str(e), field="path") from None


async def _body_chunks(request: Request):
    try:
        from lakeml.server.middleware import iter_body
    except ImportError:  # pragma: no cover
        async for chunk in request.stream():
            yield chunk
        return
    async for chunk in iter_body(request):
        yield chunk


@router.put("/artifacts/{run_id}/{path:path}", status_code=201,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_artifact(run_id: str, path: str, request: Request,
                          principal: Principal = Depends(require("write"))) -> Any:
    """Store the request body as the run's artifact ``path`` (streamed; visible only once complete)."""
    rel = _checked(run_id, path)
    if not rel:
        raise ApiError(400, "the artifact path is empty; PUT /api/v1/artifacts/{run_id}/{path}", field="path")
    lake = lake_of(request)
    await run_in_threadpool(lake.tracking.run_state, run_id)  # 404 before reading the body
    tmp = Path(tempfile.mkdtemp(prefix="lakeml-upload-"))
    try:
        dest = tmp / posixpath.basename(rel)
        with open(dest, "wb") as f:
            async for chunk in _body_chunks(request):
                f.write(chunk)
        stored = await run_in_threadpool(lake.log_artifact, run_id, dest, posixpath.dirname(rel) or None)
        sync = ingest_of(request).sync
        await run_in_threadpool(sync.wait, sync.ticket())
        return {"run_id": run_id, "path": stored, "size": dest.stat().st_size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@router.get("/artifacts/{run_id}")
def list_artifacts(run_id: str, request: Request, path: str = "", _: Principal = Depends(require("read"))) -> Any:
    """Direct children of ``path`` (files with sizes, folders with ``is_dir``)."""
    rel = _checked(run_id, path)
    lake = lake_of(request)
    lake.tracking.run_state(run_id)
    if rel:
        parent = posixpath.dirname(rel)
        me = next((a for a in lake.list_artifacts(run_id, parent) if a.path == rel), None)
        if me is not None and not me.is_dir:
            raise ApiError(400, f"artifact {rel!r} is a file, not a folder; download it with GET "
                                f"{PREFIX}{run_id}/{rel}", field="path")
    return {"run_id": run_id, "path": rel, "files": jsonable(lake.list_artifacts(run_id, rel))}


@router.get("/artifacts/{run_id}/{path:path}")
def download_artifact(run_id: str, path: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """The artifact file at ``path``, streamed (a folder: 400, list it instead)."""
    rel = _checked(run_id, path)
    if not rel:
        return list_artifacts(run_id, request, "", _)
    lake = lake_of(request)
    lake.tracking.run_state(run_id)
    tmp = Path(tempfile.mkdtemp(prefix="lakeml-download-"))
    try:
        local = Path(lake.download_artifacts(run_id, rel, tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if local.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ApiError(400, f"artifact {rel!r} is a folder; list it with GET {PREFIX}{run_id}?path={rel} and "
                            "download its files one by one", field="path")
    return FileResponse(local, media_type="application/octet-stream", filename=posixpath.basename(rel),
                        background=BackgroundTask(shutil.rmtree, tmp, True))
