"""Operations: ``/health`` (catalog and storage reachable; no token needed), ``/metrics`` (Prometheus,
scope read), ``/api/v1/server/whoami``, token management (scope admin) and ``/api/v1/server/flush``."""

from __future__ import annotations

import threading
from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from lakeml.server.deps import Principal, require

router = APIRouter(tags=["operations"])
_fs_lock = threading.Lock()


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """200 when the catalog answers and the storage root can be listed; 503 naming what failed."""
    lake = request.app.state.lake
    out: dict[str, Any] = {"status": "ok"}
    try:
        lake.store.catalog.list_namespaces()
        out["catalog"] = "ok"
    except Exception as e:  # any catalog failure is "unhealthy", with its message
        out["catalog"] = f"{type(e).__name__}: {e}"
        out["status"] = "unavailable"
    try:
        _list_storage(request.app.state, lake)
        out["storage"] = "ok"
    except Exception as e:
        out["storage"] = f"{type(e).__name__}: {e}"
        out["status"] = "unavailable"
    committer = lake.committer
    out["pending_rows"] = committer.pending_rows()
    if committer.last_error is not None:
        out["last_commit_error"] = f"{type(committer.last_error).__name__}: {committer.last_error}"
    return JSONResponse(out, status_code=200 if out["status"] == "ok" else 503)


def _list_storage(state: Any, lake: Any) -> None:
    """List the folder that holds the lake's artifacts (the warehouse root): with ``os`` for a local
    warehouse, through pyarrow's S3 FileSystem otherwise."""
    import os
    from urllib.parse import urlparse

    from lakeml.storage.objectstore import filesystem, fs_path

    root = lake.config.artifact_root.rstrip("/").rsplit("/", 1)[0]
    if urlparse(root).scheme in ("", "file"):
        with os.scandir(fs_path(root)) as entries:
            next(entries, None)
        return
    from pyarrow import fs as pafs

    with _fs_lock:
        cached = getattr(state, "health_fs", None)
        if cached is None:
            cached = state.health_fs = filesystem(root, lake.config.properties, timeout=5.0, attempts=1)
    fs, path = cached
    fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))


@router.get("/metrics", dependencies=[Depends(require("read"))])
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latencies by route, committer queue depths, commits, rows, retries."""
    from lakeml.server.metrics import CONTENT_TYPE

    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


# -- who am I, tokens (admin), flush -----------------------------------------------------------
class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=64, description="recorded as the user of the token's writes")
    scope: Literal["read", "write", "admin"] = "read"
    roles: list[str] = Field(default_factory=list, max_length=32)
    description: Optional[str] = Field(None, max_length=1000)


@router.get("/api/v1/server/whoami")
def whoami(principal: Principal = Depends(require("read"))) -> dict[str, Any]:
    """The caller as the server sees it: the token's name (the ``user`` of its writes), scope and roles."""
    return {"name": principal.name, "scope": principal.scope, "roles": list(principal.roles),
            "token_id": principal.token_id}


@router.get("/api/v1/server/tokens", dependencies=[Depends(require("admin"))])
def list_tokens(request: Request, include_revoked: bool = False) -> dict[str, Any]:
    """The server's tokens, never their secrets (scope admin)."""
    from lakeml.server.auth import TokenStore

    store = TokenStore(request.app.state.lake.store)
    return {"tokens": [t.public() for t in store.list(include_revoked=include_revoked)]}


@router.post("/api/v1/server/tokens", status_code=201)
def create_token(body: TokenIn, request: Request, principal: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Create a token (scope admin); the answer holds the token, shown only this once."""
    from lakeml.server.auth import TokenStore

    info, token = TokenStore(request.app.state.lake.store).create(
        body.name, body.scope, roles=body.roles, created_by=principal.name, description=body.description)
    request.app.state.auth.refresh()
    return {**info.public(), "token": token}


@router.delete("/api/v1/server/tokens/{name}")
def revoke_token(name: str, request: Request, principal: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Revoke a token by name or id (scope admin); other replicas refuse it within seconds."""
    from lakeml.server.auth import TokenStore

    info = TokenStore(request.app.state.lake.store).revoke(name, revoked_by=principal.name)
    request.app.state.auth.refresh()
    return info.public()


@router.post("/api/v1/server/flush", dependencies=[Depends(require("write"))])
def flush(request: Request) -> dict[str, Any]:
    """Commit every row this server process holds now (e.g. before another process reads the tables)."""
    lake = request.app.state.lake
    lake.flush()
    return {"committed": True, "pending_rows": lake.committer.pending_rows()}
