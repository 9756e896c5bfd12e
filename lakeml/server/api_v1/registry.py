"""The model registry over HTTP: models, versions, aliases, deployments, promotion gates, lineage, events.

Registry writes are compare-and-swap commits of the registry ledger: they are in Iceberg when the
answer comes. Reads need ``read``; registering, aliases and deployments ``write``; setting the
promotion gates ``admin`` (they guard the promotions everyone else makes).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lakeml.server.api_v1.common import jsonable
from lakeml.server.deps import Principal, lake_of, require

router = APIRouter(tags=["registry"])


class ModelIn(BaseModel):
    name: str
    description: str | None = None
    tags: dict[str, str] = {}


class ModelUpdate(BaseModel):
    description: str | None = None
    tags: dict[str, str] = {}
    delete_tags: list[str] = []


class VersionIn(BaseModel):
    run_id: str | None = Field(None, description="source run: the model is at runs:/<run_id>/<artifact_path>")
    artifact_path: str = "model"
    source_uri: str | None = Field(None, description="instead of run_id: where the model is stored")
    description: str | None = None
    tags: dict[str, str] = {}


class VersionUpdate(BaseModel):
    description: str | None = None
    tags: dict[str, str] = {}
    delete_tags: list[str] = []


class AliasIn(BaseModel):
    version: int


class DeploymentIn(BaseModel):
    version: int
    environment: str
    service: str
    service_version: str | None = None
    replace: bool = True


class RetireIn(BaseModel):
    environment: str | None = None
    service: str | None = None
    deployment_id: str | None = None
    reason: str | None = None


class GatesIn(BaseModel):
    min_metrics: dict[str, float] = {}
    max_metrics: dict[str, float] = {}
    required_artifacts: list[str] = []
    required_tags: dict[str, list[str] | None] = {}
    aliases: list[str] | None = None
    environments: list[str] | None = None


class GateCheckIn(BaseModel):
    alias: str | None = None
    environment: str | None = None


@router.get("/models")
def list_models(request: Request, q: str | None = None, _: Principal = Depends(require("read"))) -> Any:
    """Registered models (``q``: a substring of the name)."""
    lake = lake_of(request)
    models = lake.search_models(q) if q else lake.list_models()
    return {"models": jsonable(models)}


@router.post("/models", status_code=201)
def create_model(body: ModelIn, request: Request, _: Principal = Depends(require("write"))) -> Any:
    """Create a registered model (409 if it exists)."""
    return jsonable(lake_of(request).create_model(body.name, description=body.description, tags=body.tags or None))


@router.get("/models/{name}")
def get_model(name: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    return jsonable(lake_of(request).get_model(name))


@router.patch("/models/{name}")
def update_model(name: str, body: ModelUpdate, request: Request, _: Principal = Depends(require("write"))) -> Any:
    return jsonable(lake_of(request).update_model(name, description=body.description, tags=body.tags or None,
                                                  delete_tags=body.delete_tags))


@router.post("/models/{name}/versions", status_code=201)
def register_model(name: str, body: VersionIn, request: Request, _: Principal = Depends(require("write"))) -> Any:
    """Register the next version of ``name`` (the model is created with its first version)."""
    return jsonable(lake_of(request).register_model(name, run_id=body.run_id, artifact_path=body.artifact_path,
                                                    source_uri=body.source_uri, description=body.description,
                                                    tags=body.tags or None))


@router.get("/models/{name}/versions")
def list_versions(name: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    return {"versions": jsonable(lake_of(request).list_model_versions(name))}


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """A version by number (``latest`` for the newest)."""
    return jsonable(lake_of(request).get_model_version(name, None if version == "latest" else version))


@router.patch("/models/{name}/versions/{version}")
def update_version(name: str, version: int, body: VersionUpdate, request: Request,
                   _: Principal = Depends(require("write"))) -> Any:
    return jsonable(lake_of(request).update_model_version(name, version, description=body.description,
                                                          tags=body.tags or None, delete_tags=body.delete_tags))


@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: str, alias: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """The version an alias points at."""
    return jsonable(lake_of(request).get_model_version_by_alias(name, alias))


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasIn, request: Request, _: Principal = Depends(require("write"))) -> Any:
    """Point ``alias`` at a version (refused with 409 when the model's gates fail)."""
    return jsonable(lake_of(request).set_alias(name, alias, body.version))


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, request: Request, _: Principal = Depends(require("write"))) -> Any:
    return jsonable(lake_of(request).delete_alias(name, alias))


@router.get("/deployments")
def list_deployments(request: Request, model: str | None = None, environment: str | None = None,
                     active_only: bool = True, _: Principal = Depends(require("read"))) -> Any:
    return {"deployments": jsonable(lake_of(request).list_deployments(model, environment=environment,
                                                                      active_only=active_only))}


@router.post("/models/{name}/deployments", status_code=201)
def record_deployment(name: str, body: DeploymentIn, request: Request,
                      _: Principal = Depends(require("write"))) -> Any:
    """Record that a version runs in an environment and service (gates apply)."""
    return jsonable(lake_of(request).record_deployment(name, body.version, environment=body.environment,
                                                       service=body.service, service_version=body.service_version,
                                                       replace=body.replace))


@router.post("/models/{name}/deployments/retire")
def retire_deployment(name: str, body: RetireIn, request: Request, _: Principal = Depends(require("write"))) -> Any:
    return {"retired": jsonable(lake_of(request).retire_deployment(
        name, environment=body.environment, service=body.service, deployment_id=body.deployment_id,
        reason=body.reason))}


@router.get("/models/{name}/gates")
def get_gates(name: str, request: Request, _: Principal = Depends(require("read"))) -> Any:
    gates = lake_of(request).get_gates(name)
    return {"name": name, "gates": jsonable(gates) if gates is not None else None}


@router.put("/models/{name}/gates")
def set_gates(name: str, body: GatesIn, request: Request, _: Principal = Depends(require("admin"))) -> Any:
    """Declare the rules a version must pass before it gets an alias or an environment."""
    gates = lake_of(request).set_gates(name, min_metrics=body.min_metrics, max_metrics=body.max_metrics,
                                       required_artifacts=body.required_artifacts,
                                       required_tags={k: (list(x) if x is not None else None)
                                                      for k, x in body.required_tags.items()},
                                       aliases=body.aliases, environments=body.environments)
    return {"name": name, "gates": jsonable(gates)}


@router.post("/models/{name}/versions/{version}/gates/check")
def check_gates(name: str, version: int, body: GateCheckIn, request: Request,
                _: Principal = Depends(require("read"))) -> Any:
    """Dry run of a promotion: the rules the version would fail (empty: it passes)."""
    failures = lake_of(request).check_gates(name, version, alias=body.alias, environment=body.environment)
    return {"name": name, "version": version, "passes": not failures, "failures": failures}


@router.get("/models/{name}/lineage")
def model_lineage(name: str, request: Request, version: str | None = None,
                  _: Principal = Depends(require("read"))) -> Any:
    return jsonable(lake_of(request).model_lineage(name, version))


@router.get("/registry/events")
def registry_events(request: Request, name: str | None = None, _: Principal = Depends(require("read"))) -> Any:
    return {"events": jsonable(lake_of(request).registry_events(name))}
