"""``/api/v1/experiments``: list, create, get by id or name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lakeml.errors import NotFoundError
from lakeml.server.api_v1.common import jsonable
from lakeml.server.deps import Principal, lake_of, require

router = APIRouter(tags=["experiments"])


class ExperimentIn(BaseModel):
    name: str = Field(description="unique experiment name")
    tags: dict[str, str] = {}
    artifact_location: str | None = None


class ExperimentOut(BaseModel):
    experiment_id: str
    name: str
    artifact_location: str | None = None
    created_at: str | None = None
    tags: dict[str, str] = {}


@router.get("/experiments", response_model=dict[str, list[ExperimentOut]])
def list_experiments(request: Request, _: Principal = Depends(require("read"))) -> Any:
    """Every experiment, oldest first."""
    return {"experiments": jsonable(lake_of(request).list_experiments())}


@router.post("/experiments", response_model=ExperimentOut, status_code=201)
def create_experiment(body: ExperimentIn, request: Request, _: Principal = Depends(require("write"))) -> Any:
    """Create an experiment (409 if the name exists). Its id is derived from the name."""
    lake = lake_of(request)
    lake.create_experiment(body.name, tags=body.tags or None, artifact_location=body.artifact_location)
    from lakeml.server.api_v1.common import ingest_of

    sync = ingest_of(request).sync
    sync.wait(sync.ticket())
    return jsonable(lake.get_experiment_by_name(body.name))


@router.get("/experiments/{ref}", response_model=ExperimentOut)
def get_experiment(ref: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """An experiment by id, or else by name."""
    exps = lake_of(request).list_experiments()
    for e in exps:
        if e.experiment_id == ref:
            return jsonable(e)
    for e in exps:
        if e.name == ref:
            return jsonable(e)
    raise NotFoundError(f"no experiment with id or name {ref!r}; list them with GET /api/v1/experiments")
