"""``/health``: is the server up, and are its catalog and storage reachable."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """200 when the catalog answers; 503 with the reason when it does not."""
    lake = request.app.state.lake
    try:
        lake.store.catalog.list_namespaces()
    except Exception as e:  # any catalog failure is "unhealthy", with its message
        return JSONResponse({"status": "unavailable", "catalog": f"{type(e).__name__}: {e}"}, status_code=503)
    return JSONResponse({"status": "ok", "catalog": "ok"})
