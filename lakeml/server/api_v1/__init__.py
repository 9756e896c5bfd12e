"""lakeml's own versioned HTTP API, ``/api/v1``: experiments, runs, batched logging (JSON or Arrow IPC),
search and metric history, artifacts, and the model registry. One router per resource; ``router``
includes them all. Writes are acknowledged once durable (see :mod:`lakeml.server.api_v1.ingest`)."""

from __future__ import annotations

from fastapi import APIRouter

from lakeml.server.api_v1 import artifacts, experiments, logging, registry, runs, search

router = APIRouter(prefix="/api/v1")
# search first: GET /runs and POST /runs/search must not be taken for /runs/{run_id}
for _sub in (experiments, search, runs, logging, artifacts, registry):
    router.include_router(_sub.router)
