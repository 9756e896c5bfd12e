"""Model projects over HTTP (``lake.projects``): list, show, board, tasks, complete, approve, cancel.

Reads need scope ``read``, transitions scope ``write``. A token's roles (``Principal.roles``) are the
caller's roles: a user completes only tasks of their lanes. An anonymous caller (a server without
tokens) has the roles the project assigns to the server's OS user.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lakeml.identity import acting_as
from lakeml.server.deps import Principal, lake_of, require

router = APIRouter(prefix="/api/v1", tags=["projects"])


def _roles(principal: Principal) -> Optional[List[str]]:
    return list(principal.roles) if principal.token_id is not None else None


def _project(p: Any) -> Dict[str, Any]:
    return asdict(p)


def _task(t: Any, names: Dict[str, str]) -> Dict[str, Any]:
    d = asdict(t)
    d["project"] = names.get(t.project_id, t.project_id)
    return d


class CompleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deliverables: Dict[str, str] = Field(default_factory=dict, description="deliverable key -> value")
    run_id: Optional[str] = None
    model: Optional[str] = Field(None, description="model version: NAME/VERSION or NAME@ALIAS")
    decision: str = "done"
    comment: Optional[str] = None


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    problem: Optional[str] = None
    customer: Optional[str] = None
    target_date: Optional[str] = None
    expected_value: Optional[float] = None
    roles: Dict[str, List[str]] = Field(default_factory=dict)
    experiments: List[str] = Field(default_factory=list)
    models: List[str] = Field(default_factory=list)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Optional[str] = None
    comment: Optional[str] = None


@router.get("/projects")
def list_projects(request: Request, status: Optional[str] = None, customer: Optional[str] = None,
                  principal: Principal = Depends(require("read"))) -> Dict[str, Any]:
    """Model projects (of a status, of a customer)."""
    return {"projects": [_project(p) for p in lake_of(request).projects.list(status=status, customer=customer)]}


@router.post("/projects")
def create_project(body: CreateBody, request: Request,
                   principal: Principal = Depends(require("write"))) -> Dict[str, Any]:
    """Create a model project and start its process (the shipped default BPMN)."""
    lake = lake_of(request)
    with acting_as(principal.name):
        p = lake.projects.create(body.name, problem=body.problem, customer=body.customer,
                                 target_date=body.target_date, expected_value=body.expected_value,
                                 roles=body.roles, experiments=body.experiments, models=body.models)
    return {"project": _project(p)}


@router.get("/project_board")
def board(request: Request, status: Optional[str] = None, customer: Optional[str] = None,
          role: Optional[str] = None, principal: Principal = Depends(require("read"))) -> Dict[str, Any]:
    """The ``lakeml.project_board`` view, filtered by status, customer or waiting role."""
    df = lake_of(request).projects.board(status=status, customer=customer, role=role)
    return {"board": df.to_dicts()}


@router.get("/projects/{name}")
def show_project(name: str, request: Request, principal: Principal = Depends(require("read"))) -> Dict[str, Any]:
    """A project, its ready tasks and its history."""
    info = lake_of(request).projects.show(name)
    names = {info["project"].project_id: name}
    return {"project": _project(info["project"]), "ready": [_task(t, names) for t in info["ready"]],
            "events": info["events"]}


@router.get("/projects/{name}/tasks")
def project_tasks(name: str, request: Request, mine: bool = False, all: bool = False,
                  principal: Principal = Depends(require("read"))) -> Dict[str, Any]:
    """Ready tasks of a project (``mine``: those the caller may complete; ``all``: every state)."""
    lake = lake_of(request)
    with acting_as(principal.name):
        tasks = lake.projects.tasks(name, mine=mine, roles=_roles(principal), state=None if all else "ready")
    pid = lake.projects.get(name).project_id
    return {"tasks": [_task(t, {pid: name}) for t in tasks]}


@router.post("/projects/{name}/tasks/{task}/complete")
def complete_task(name: str, task: str, body: CompleteBody, request: Request,
                  principal: Principal = Depends(require("write"))) -> Dict[str, Any]:
    """Complete a ready task: 403 outside the caller's roles, 400 listing missing deliverables,
    409 when someone else completed it first."""
    lake = lake_of(request)
    with acting_as(principal.name):
        ready = lake.projects.complete(name, task, deliverables=body.deliverables, run_id=body.run_id,
                                       model=body.model, decision=body.decision, comment=body.comment,
                                       roles=_roles(principal))
    p = lake.projects.get(name)
    return {"status": p.status, "ready": [_task(t, {p.project_id: name}) for t in ready]}


@router.post("/projects/{name}/tasks/{task}/approve")
def approve_task(name: str, task: str, body: ApproveBody, request: Request,
                 principal: Principal = Depends(require("write"))) -> Dict[str, Any]:
    """Approve a ready task in a role the caller holds."""
    lake = lake_of(request)
    with acting_as(principal.name):
        t = lake.projects.approve(name, task, role=body.role, comment=body.comment, roles=_roles(principal))
    return {"task": _task(t, {t.project_id: name})}


@router.post("/projects/{name}/cancel")
def cancel_project(name: str, body: CancelBody, request: Request,
                   principal: Principal = Depends(require("write"))) -> Dict[str, Any]:
    """Cancel a project with a reason."""
    with acting_as(principal.name):
        p = lake_of(request).projects.cancel(name, reason=body.reason, roles=_roles(principal))
    return {"project": _project(p)}
