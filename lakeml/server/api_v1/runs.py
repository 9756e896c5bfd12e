"""``/api/v1/runs``: create, get, terminate or update, delete a tag, log and list inputs.

Writes take ``X-Lakeml-Batch-Id`` (idempotency key) like the logging routes; a run may be created
with an id chosen by the client (``run_id``), so a client can log before the server has answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lakeml import validation as v
from lakeml.entities import RunStatus
from lakeml.ids import DEFAULT_EXPERIMENT
from lakeml.server.api_v1.common import batch_time, duplicate_headers, ingest_of, jsonable, write_key
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError

router = APIRouter(tags=["runs"])


class RunIn(BaseModel):
    experiment: str = Field(DEFAULT_EXPERIMENT, description="experiment name (created on first use)")
    run_name: str | None = None
    tags: dict[str, str] = {}
    parent_run_id: str | None = None
    start_time: int | None = Field(None, description="milliseconds since the epoch (default: now)")
    run_id: str | None = Field(None, description="32 lowercase hex characters chosen by the client (default: new)")


class RunUpdate(BaseModel):
    status: str = Field("FINISHED", description="FINISHED, FAILED or KILLED")
    end_time: int | None = Field(None, description="milliseconds since the epoch (default: now)")
    error: str | None = None


class InputIn(BaseModel):
    table: str = Field(description="an Iceberg table the run read, e.g. sales.features")
    role: str = "train"
    snapshot_id: int | None = Field(None, description="default: the table's current snapshot")
    name: str | None = None


def _run_id(run_id: str) -> str:
    try:
        return v.validate_run_id(run_id)
    except ValueError as e:
        raise ApiError(400, str(e), field="run_id") from None


@router.post("/runs", status_code=201)
def create_run(body: RunIn, request: Request, principal: Principal = Depends(require("write"))) -> JSONResponse:
    """Start a run (RUNNING) and return it."""
    lake = lake_of(request)
    key, retry = write_key(request)
    if body.run_id is not None:
        _run_id(body.run_id)
    if body.parent_run_id is not None:
        _run_id(body.parent_run_id)

    def prepare() -> Any:
        if body.parent_run_id is not None:
            lake.tracking.run_state(body.parent_run_id)  # 404 now, not inside the write
        return None

    out: dict[str, Any] = {}

    def add(_: Any) -> int:
        run = lake.tracking.create_run(body.experiment, run_name=body.run_name, tags=body.tags or None,
                                       parent_run_id=body.parent_run_id, start_time_ms=body.start_time,
                                       run_id=body.run_id)
        out["run"] = run
        return 1

    dup, _ = ingest_of(request).write(key, retry, principal.name, "run", prepare, add,
                                      since_ms=batch_time(request))
    run = lake.get_run(body.run_id) if dup and body.run_id else out.get("run")
    if run is None:
        raise ApiError(409, "this batch id was already accepted for a run created without a client-chosen run_id; "
                            "send run_id with the request to read it back", field="X-Lakeml-Batch-Id")
    return JSONResponse(jsonable(run), status_code=200 if dup else 201, headers=duplicate_headers(dup))


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """The run with its params, latest metrics, tags and inputs."""
    return jsonable(lake_of(request).get_run(_run_id(run_id)))


def _terminate(run_id: str, body: RunUpdate, request: Request, principal: Principal) -> JSONResponse:
    lake = lake_of(request)
    key, retry = write_key(request)
    _run_id(run_id)
    try:
        status = RunStatus(body.status)
    except ValueError:
        raise ApiError(400, f"status {body.status!r} is not one of FINISHED, FAILED, KILLED", field="status") from None

    def prepare() -> Any:
        lake.tracking.run_state(run_id)
        return None

    def add(_: Any) -> int:  # not atomic: set_terminated hands off itself (a repeated end event is harmless)
        lake.tracking.set_terminated(run_id, status, error=body.error, end_time_ms=body.end_time, wait=False)
        return 1

    dup, _ = ingest_of(request).write(key, retry, principal.name, "terminate", prepare, add, atomic=False,
                                      since_ms=batch_time(request))
    return JSONResponse({"run_id": run_id, "status": status.value, "duplicate": dup}, headers=duplicate_headers(dup))


@router.post("/runs/{run_id}/terminate")
def terminate_run(run_id: str, body: RunUpdate, request: Request,
                  principal: Principal = Depends(require("write"))) -> JSONResponse:
    """End a run as FINISHED, FAILED or KILLED."""
    return _terminate(run_id, body, request, principal)


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: RunUpdate, request: Request,
               principal: Principal = Depends(require("write"))) -> JSONResponse:
    """Update a run's status (the same as ``POST /runs/{run_id}/terminate``)."""
    return _terminate(run_id, body, request, principal)


@router.delete("/runs/{run_id}/tags/{key:path}")
def delete_tag(run_id: str, key: str, request: Request, principal: Principal = Depends(require("write"))) -> Any:
    """Delete a tag of the run (recorded as a deletion event)."""
    lake = lake_of(request)
    wkey, retry = write_key(request)
    _run_id(run_id)
    try:
        v.validate_key(key, "tag")
    except ValueError as e:
        raise ApiError(400, str(e), field="key") from None

    def prepare() -> Any:
        lake.tracking.run_state(run_id)

    def add(_: Any) -> int:
        lake.tracking.delete_tag(run_id, key)
        return 1

    dup, _ = ingest_of(request).write(wkey, retry, principal.name, "delete_tag", prepare, add,
                                      since_ms=batch_time(request))
    return {"run_id": run_id, "key": key, "deleted": True, "duplicate": dup}


@router.post("/runs/{run_id}/inputs", status_code=201)
def log_input(run_id: str, body: InputIn, request: Request, principal: Principal = Depends(require("write"))) -> Any:
    """Record that the run read an Iceberg table (at a snapshot: default the current one)."""
    lake = lake_of(request)
    wkey, retry = write_key(request)
    _run_id(run_id)
    out: dict[str, Any] = {}

    def prepare() -> Any:
        lake.tracking.run_state(run_id)

    def add(_: Any) -> int:  # reads the table's snapshot: not inside the take lock
        out["input"] = lake.log_input(run_id, table=body.table, role=body.role, snapshot_id=body.snapshot_id,
                                      name=body.name)
        return 1

    dup, _ = ingest_of(request).write(wkey, retry, principal.name, "input", prepare, add, atomic=False,
                                      since_ms=batch_time(request))
    if dup:
        return {"duplicate": True}
    return jsonable(out["input"])


@router.get("/runs/{run_id}/inputs")
def get_inputs(run_id: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """The inputs the run recorded (tables with their snapshots, files with digests)."""
    return {"inputs": jsonable(lake_of(request).get_inputs(_run_id(run_id)))}
