"""The portal's management view of model projects (issue 13): a kanban by status with filters by
customer and by the role a project waits on (``/board``), and one project's steps, tasks, deliverables and
history (``/project?name=...``). The data is ``lake.projects``: the board is the ``lakeml.project_board``
view (read through :meth:`Projects.board`, which first repairs lagging projections).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.portal.pages import HERE, add_page

router = APIRouter(include_in_schema=False)
API = "/portal/api"
STATUSES = ("proposed", "in_development", "validation", "approved", "in_production", "retired", "cancelled")

add_page("/board", "Project board", "board.html", nav="Board", templates_dir=HERE / "templates")
add_page("/project", "Project", "project.html", templates_dir=HERE / "templates")


def _iso(us: Any) -> Optional[str]:
    if us is None:
        return None
    if isinstance(us, datetime):
        return us.astimezone(timezone.utc).isoformat()
    return datetime.fromtimestamp(int(us) / 1e6, timezone.utc).isoformat()


def _card(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("roles", "created_at", "status_since", "last_activity",
                                                     "monitored_until", "target_date")}
    for k in ("created_at", "status_since", "last_activity", "monitored_until"):
        out[k] = _iso(row.get(k))
    out["target_date"] = row["target_date"].isoformat() if row.get("target_date") is not None else None
    roles = row.get("roles") or []
    out["roles"] = {r["key"]: r["value"] for r in roles} if isinstance(roles, list) else dict(roles)
    return out


@router.get(API + "/board")
def board(request: Request, customer: Optional[str] = None, role: Optional[str] = None,
          _: Principal = Depends(require("read"))) -> dict[str, Any]:
    """The board's cards (filtered by customer and by the role a current step waits on), the columns
    (statuses, in process order) and the values the filters offer."""
    lake = lake_of(request)
    rows = lake.projects.board(customer=customer or None, role=role or None).to_dicts()
    everyone = lake.projects.list()
    customers = sorted({p.customer for p in everyone if p.customer})
    roles = sorted({r for p in everyone for r in p.roles} | {r for x in rows for r in (x.get("role") or "").split(", ")
                                                            if r})
    return {"statuses": list(STATUSES), "cards": [_card(r) for r in rows], "customers": customers, "roles": roles,
            "filters": {"customer": customer or None, "role": role or None}, "projects": len(everyone)}


@router.get(API + "/board/weekly.html", response_class=HTMLResponse)
def weekly(request: Request, _: Principal = Depends(require("read"))) -> HTMLResponse:
    """The weekly management summary (``lakeml projects board --html``): counts per status, time to
    production per project, stuck steps."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="lakeml-weekly-") as tmp:
        text = lake_of(request).projects.weekly_summary(Path(tmp) / "weekly.html").read_text(encoding="utf-8")
    return HTMLResponse(text, headers={"Cache-Control": "no-store"})


@router.get(API + "/project")
def project(request: Request, name: str, _: Principal = Depends(require("read"))) -> dict[str, Any]:
    """One project: its record, the process's steps with their state, every task instance, the
    deliverables handed in, and the history of events."""
    from lakeml.lifecycle.process import load_process

    lake = lake_of(request)
    info = lake.projects.show(name)
    p = info["project"]
    tasks = lake.projects.tasks(name, state=None)
    prc = load_process(None if p.process == "default" else p.process)
    latest: dict[str, Any] = {}
    for t in tasks:  # oldest first: the last instance of each step is its state
        latest[t.task_id] = t
    steps = []
    for s in prc.steps.values():
        t = latest.get(s.task_id)
        steps.append({"task_id": s.task_id, "name": s.name, "role": s.role, "status": s.status,
                      "sla_days": s.sla_days, "required": [str(d) for d in s.deliverables],
                      "state": t.state if t is not None else "pending", "runs": sum(x.task_id == s.task_id
                                                                                   for x in tasks)})
    events, delivered = [], []
    for e in info["events"]:
        e = dict(e)
        e["event_time"] = _iso(e["event_time"])
        if e["event_type"] == "task_completed" and e.get("deliverables"):
            for d in json.loads(e["deliverables"]):
                delivered.append({"task_id": e["task_id"], "task_name": e["task_name"], "by": e["actor"],
                                  "at": e["event_time"], **d})
        events.append(e)
    proj = asdict(p)
    for k in ("created_at", "updated_at", "status_since"):
        proj[k] = _iso(proj[k])
    task_rows = []
    for t in tasks:
        d = asdict(t)
        for k in ("ready_at", "completed_at", "updated_at"):
            d[k] = _iso(d[k])
        task_rows.append(d)
    return {"project": proj, "steps": steps, "tasks": task_rows, "deliverables": delivered, "events": events}
