"""CLI: ``lakeml projects ...`` and ``lakeml tasks ...`` (the model lifecycle, ``lake.projects``).

The acting user is the OS user (``$USER``); their roles are the project's role assignments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from lakeml.cli.common import (
    CatalogOpt,
    Output,
    OutputOpt,
    WarehouseOpt,
    echo,
    emit,
    emit_mapping,
    handle_errors,
    open_lake,
    print_json,
)
from lakeml.errors import InvalidInputError

app = typer.Typer(help="Model projects run as BPMN processes: create, list, show, board, cancel.",
                  no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks of model projects: list (--mine), complete, approve, reassign.",
                        no_args_is_help=True)

_PROJECT_COLS = ["name", "status", "customer", "target_date", "models", "experiments", "created_by"]
_TASK_COLS = ["project", "task_id", "task_name", "role", "assignee", "days_ready", "required", "blocked_by"]
_BOARD_COLS = ["project", "status", "customer", "current_step", "assignee", "days_in_step", "stuck", "blocked_by",
               "last_activity", "production_model_version", "monitoring_status"]


def _pairs(items: Optional[List[str]], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{what} {item!r} must be KEY=VALUE")
        out[key.strip()] = val
    return out


def _project_row(p: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(p)
    d["models"] = ", ".join(p.models)
    d["experiments"] = ", ".join(p.experiments)
    d["roles"] = {r: ", ".join(u) for r, u in p.roles.items()}
    return d


def _task_rows(lake: Any, tasks: list[Any]) -> list[dict[str, Any]]:
    from dataclasses import asdict

    names = {p.project_id: p.name for p in lake.projects.list()}
    now = lake.clock()
    out = []
    for t in tasks:
        d = asdict(t)
        d["project"] = names.get(t.project_id, t.project_id)
        d["required"] = ", ".join(t.required)
        d["days_ready"] = round(t.days_ready(now), 2)
        out.append(d)
    return out


@app.command("create")
@handle_errors
def create(name: str = typer.Argument(..., help="project name, e.g. churn-2027"),
           problem: Optional[str] = typer.Option(None, "--problem", help="the business problem, in words"),
           customer: Optional[str] = typer.Option(None, "--customer", help="the business customer"),
           target_date: Optional[str] = typer.Option(None, "--target-date", help="YYYY-MM-DD"),
           value: Optional[float] = typer.Option(None, "--value", help="expected business value"),
           role: Optional[List[str]] = typer.Option(None, "--role", help="ROLE=USER[,USER], repeatable"),
           experiment: Optional[List[str]] = typer.Option(None, "--experiment", help="linked experiment, repeatable"),
           model: Optional[List[str]] = typer.Option(None, "--model", help="linked registered model, repeatable"),
           process: Optional[Path] = typer.Option(None, "--process", help="BPMN file (default: the shipped one)"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
           output: Output = OutputOpt) -> None:
    """Create a model project and start its process."""
    roles = {r: [u for u in users.split(",") if u.strip()] for r, users in _pairs(role, "--role").items()}
    with open_lake(catalog, warehouse) as lake:
        p = lake.projects.create(name, problem=problem, customer=customer, target_date=target_date,
                                 expected_value=value, roles=roles, experiments=experiment or (),
                                 models=model or (), process=process)
        ready = lake.projects.tasks(name)
    if output == Output.json:
        print_json({"project": _project_row(p), "ready": [t.task_id for t in ready]})
        return
    echo(f"created project {p.name} ({p.status}); ready: {', '.join(t.task_id for t in ready) or 'nothing'}")


@app.command("list")
@handle_errors
def list_projects(status: Optional[str] = typer.Option(None, "--status", help="only projects in this status"),
                  customer: Optional[str] = typer.Option(None, "--customer", help="only this customer's projects"),
                  catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
                  output: Output = OutputOpt) -> None:
    """List model projects."""
    with open_lake(catalog, warehouse) as lake:
        rows = [_project_row(p) for p in lake.projects.list(status=status, customer=customer)]
    emit(rows, output, _PROJECT_COLS)


@app.command("show")
@handle_errors
def show(name: str = typer.Argument(...), catalog: Optional[str] = CatalogOpt,
         warehouse: Optional[str] = WarehouseOpt, output: Output = OutputOpt) -> None:
    """Show a project: its fields, its ready tasks and its history."""
    with open_lake(catalog, warehouse) as lake:
        info = lake.projects.show(name)
        ready = _task_rows(lake, info["ready"])
    p = info["project"]
    events = [{k: e[k] for k in ("event_seq", "event_time", "event_type", "outcome", "actor", "role", "task_id",
                                 "decision", "status_after", "comment")} for e in info["events"]]
    if output == Output.json:
        print_json({"project": _project_row(p), "ready": ready, "events": events})
        return
    emit_mapping(f"project {p.name}", {k: v for k, v in _project_row(p).items() if k != "project_id"})
    typer.secho("ready tasks", bold=True)
    emit(ready, output, ["task_id", "task_name", "role", "assignee", "days_ready", "required", "blocked_by"])
    typer.secho("history", bold=True)
    emit(events, output, ["event_seq", "event_time", "event_type", "outcome", "actor", "role", "task_id",
                          "decision", "status_after", "comment"])


@app.command("board")
@handle_errors
def board(status: Optional[str] = typer.Option(None, "--status", help="only this status"),
          customer: Optional[str] = typer.Option(None, "--customer", help="only this customer"),
          role: Optional[str] = typer.Option(None, "--role", help="only projects waiting on this role"),
          html: Optional[Path] = typer.Option(None, "--html", help="also write the weekly summary as HTML here"),
          catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
          output: Output = OutputOpt) -> None:
    """The management board (the lakeml.project_board view): status, step, assignee, days in step, blocked-by."""
    with open_lake(catalog, warehouse) as lake:
        rows = lake.projects.board(status=status, customer=customer, role=role).to_dicts()
        if html is not None:
            lake.projects.weekly_summary(html)
    emit(rows, output, _BOARD_COLS)
    if html is not None and output == Output.text:
        echo(f"weekly summary written to {html}")


@app.command("cancel")
@handle_errors
def cancel(name: str = typer.Argument(...), reason: str = typer.Option(..., "--reason", help="why (required)"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Cancel a project: its open tasks are cancelled and its process stops."""
    with open_lake(catalog, warehouse) as lake:
        p = lake.projects.cancel(name, reason=reason)
    echo(f"project {p.name} cancelled: {reason}")


@app.command("assign")
@handle_errors
def assign(name: str = typer.Argument(...), role: str = typer.Argument(..., help="a lane of the process"),
           users: List[str] = typer.Argument(..., help="user name(s)"),
           replace: bool = typer.Option(False, "--replace", help="replace who holds the role"),
           catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Give users a role on a project."""
    with open_lake(catalog, warehouse) as lake:
        p = lake.projects.assign(name, role, users, replace=replace)
    echo(f"{role} on {p.name}: {', '.join(p.users_in(role.strip().lower().replace(' ', '_')))}")


@app.command("link")
@handle_errors
def link(name: str = typer.Argument(...),
         experiment: Optional[List[str]] = typer.Option(None, "--experiment", help="repeatable"),
         model: Optional[List[str]] = typer.Option(None, "--model", help="repeatable"),
         catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Link experiments and registered models to a project."""
    with open_lake(catalog, warehouse) as lake:
        p = lake.projects.link(name, experiments=experiment or (), models=model or ())
    echo(f"{p.name}: experiments {', '.join(p.experiments) or 'none'}; models {', '.join(p.models) or 'none'}")


@app.command("check-sla")
@handle_errors
def check_sla(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
              output: Output = OutputOpt) -> None:
    """Record and notify (webhooks) each ready task idle past its SLA; run it from cron."""
    with open_lake(catalog, warehouse) as lake:
        rows = _task_rows(lake, lake.projects.check_sla())
    emit(rows, output, _TASK_COLS)


@app.command("sync")
@handle_errors
def sync(catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
         output: Output = OutputOpt) -> None:
    """Rebuild projects/tasks rows that project_events has and they lack (after a crash); the board does it too."""
    with open_lake(catalog, warehouse) as lake:
        res = lake.projects.sync()
    if output == Output.json:
        print_json(res.to_dict())
        return
    if not res.rows:
        echo(f"projects and tasks agree with project_events (event {res.ledger_seq}); nothing to rebuild")
        return
    echo(f"rebuilt {len(res.projects)} projects row(s) ({', '.join(res.projects) or 'none'}) and "
         f"{len(res.tasks)} tasks row(s) from project_events (event {res.ledger_seq})")


# -- tasks -------------------------------------------------------------------------------------------
@tasks_app.command("list")
@handle_errors
def list_tasks(project: Optional[str] = typer.Argument(None, help="only this project"),
               mine: bool = typer.Option(False, "--mine", help="only tasks I may complete"),
               all_: bool = typer.Option(False, "--all", help="completed and cancelled tasks too"),
               catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
               output: Output = OutputOpt) -> None:
    """List ready tasks (of a project; --mine: those of my roles)."""
    with open_lake(catalog, warehouse) as lake:
        rows = _task_rows(lake, lake.projects.tasks(project, mine=mine, state=None if all_ else "ready"))
    emit(rows, output, _TASK_COLS + (["state", "completed_by"] if all_ else []))


@tasks_app.command("complete")
@handle_errors
def complete(project: str = typer.Argument(...), task: str = typer.Argument(..., help="BPMN task id"),
             set_: Optional[List[str]] = typer.Option(None, "--set", help="KIND:NAME=VALUE deliverable, repeatable "
                                                                          "(e.g. link:mart=s3://..., doc:mart=@file.md)"),
             run_id: Optional[str] = typer.Option(None, "--run", help="run holding artifact deliverables"),
             model: Optional[str] = typer.Option(None, "--model", help="model version: NAME/VERSION or NAME@ALIAS"),
             decision: str = typer.Option("done", "--decision", help="done, rework or cancel"),
             comment: Optional[str] = typer.Option(None, "--comment"),
             catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt,
             output: Output = OutputOpt) -> None:
    """Complete a ready task after checking its deliverables; prints what became ready."""
    evidence = {k: (v[1:] if v.startswith("@") else v) for k, v in _pairs(set_, "--set").items()}
    with open_lake(catalog, warehouse) as lake:
        ready = lake.projects.complete(project, task, deliverables=evidence, run_id=run_id, model=model,
                                       decision=decision, comment=comment)
        status = lake.projects.get(project).status
    if output == Output.json:
        print_json({"status": status, "ready": [t.task_id for t in ready]})
        return
    echo(f"completed {task} of {project} ({status}); ready now: {', '.join(t.task_id for t in ready) or 'nothing'}")


@tasks_app.command("approve")
@handle_errors
def approve(project: str = typer.Argument(...), task: str = typer.Argument(...),
            role: Optional[str] = typer.Option(None, "--role", help="the role you approve in"),
            comment: Optional[str] = typer.Option(None, "--comment"),
            catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Approve a ready task (its approval:<role> deliverable) in a role you hold."""
    with open_lake(catalog, warehouse) as lake:
        t = lake.projects.approve(project, task, role=role, comment=comment)
    echo(f"approved {t.task_id} of {project} ({', '.join(f'{r} by {u}' for r, u in t.approvals.items())})")


@tasks_app.command("reassign")
@handle_errors
def reassign(project: str = typer.Argument(...), task: str = typer.Argument(...),
             user: str = typer.Argument(..., help="who does it now (must hold the task's role)"),
             comment: Optional[str] = typer.Option(None, "--comment"),
             catalog: Optional[str] = CatalogOpt, warehouse: Optional[str] = WarehouseOpt) -> None:
    """Assign a ready task to another user of its role."""
    with open_lake(catalog, warehouse) as lake:
        t = lake.projects.reassign(project, task, user, comment=comment)
    echo(f"{t.task_id} of {project} is assigned to {t.assignee}")
