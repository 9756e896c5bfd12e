"""Model projects, their tasks and their events as records, and the state folded from the events."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Project:
    """A model project: the unit the business sees."""

    project_id: str
    name: str
    problem: str | None
    customer: str | None
    status: str
    process: str
    target_date: str | None  # ISO date
    expected_value: float | None
    roles: dict[str, list[str]]  # role -> users
    experiments: list[str]
    models: list[str]
    created_at: int  # µs
    created_by: str | None
    updated_at: int
    updated_by: str | None
    status_since: int
    cancel_reason: str | None = None

    def replace(self, **kw: Any) -> "Project":
        return replace(self, **kw)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Project":
        return cls(**json.loads(text))

    def users_in(self, role: str) -> list[str]:
        return list(self.roles.get(role, []))

    def roles_of(self, user: str | None) -> list[str]:
        return sorted(r for r, users in self.roles.items() if user in users)


@dataclass(frozen=True)
class Task:
    """One user task instance of a project (a task run again after rework is a new instance)."""

    project_id: str
    task_instance: str
    task_id: str
    task_name: str
    role: str
    state: str  # ready, completed, cancelled
    required: list[str]
    sla_days: float | None
    ready_at: int
    assignee: str | None = None
    completed_at: int | None = None
    completed_by: str | None = None
    blocked_by: str | None = None
    updated_at: int = 0
    approvals: dict[str, str] = field(default_factory=dict)  # role -> user who approved
    decision: str | None = None
    idle_notified: bool = False

    def replace(self, **kw: Any) -> "Task":
        return replace(self, **kw)

    def days_ready(self, now_us: int) -> float:
        return max(0.0, (now_us - self.ready_at) / 86_400e6)


@dataclass(frozen=True)
class ProjectEvent:
    """One row of ``project_events`` (without the workflow state)."""

    event_seq: int
    event_id: str
    event_time: datetime
    project_id: str
    project_name: str
    event_type: str
    outcome: str
    actor: str | None
    role: str | None
    task_id: str | None
    task_name: str | None
    task_instance: str | None
    assignee: str | None
    deliverables: Any
    comment: str | None
    decision: str | None
    status_before: str | None
    status_after: str | None


class ProjectsState:
    """Every project, its workflow state and its tasks, folded from the ledger (latest event wins)."""

    def __init__(self) -> None:
        self.seq = 0
        self.projects: dict[str, Project] = {}
        self.workflows: dict[str, str] = {}
        self.tasks: dict[str, Task] = {}
        self.last_activity: dict[str, int] = {}

    def copy(self) -> "ProjectsState":
        st = ProjectsState()
        st.seq = self.seq
        st.projects = dict(self.projects)
        st.workflows = dict(self.workflows)
        st.tasks = dict(self.tasks)
        st.last_activity = dict(self.last_activity)
        return st

    def tasks_of(self, project_id: str, state: str | None = "ready") -> list[Task]:
        return sorted((t for t in self.tasks.values() if t.project_id == project_id
                       and (state is None or t.state == state)), key=lambda t: (t.ready_at, t.task_instance))

    def apply(self, row: dict[str, Any], t_us: int) -> None:
        """Fold one ledger row (a dict of its columns; ``t_us`` its time in µs)."""
        self.seq = row["event_seq"]
        pid = row["project_id"]
        self.last_activity[pid] = t_us
        if row["outcome"] == "applied" and row.get("project"):
            self.projects[pid] = Project.from_json(row["project"])
        if row.get("workflow_state"):
            self.workflows[pid] = row["workflow_state"]
        et, inst = row["event_type"], row.get("task_instance")
        if et == "task_ready":
            info = json.loads(row["deliverables"] or "{}")
            self.tasks[inst] = Task(pid, inst, row["task_id"], row["task_name"] or row["task_id"], row["role"] or "",
                                    "ready", list(info.get("required", [])), info.get("sla_days"), t_us,
                                    row.get("assignee"), updated_at=t_us)
        elif inst in self.tasks:
            task = self.tasks[inst]
            if et == "task_completed":
                self.tasks[inst] = task.replace(state="completed", completed_at=t_us, completed_by=row["actor"],
                                                blocked_by=None, decision=row.get("decision"), updated_at=t_us)
            elif et == "task_refused":
                self.tasks[inst] = task.replace(blocked_by=row.get("comment"), updated_at=t_us)
            elif et == "task_reassigned":
                self.tasks[inst] = task.replace(assignee=row.get("assignee"), updated_at=t_us)
            elif et == "approval_given":
                self.tasks[inst] = task.replace(approvals={**task.approvals, row["role"]: row["actor"]},
                                                updated_at=t_us)
            elif et == "step_idle":
                self.tasks[inst] = task.replace(idle_notified=True)
            elif et == "task_cancelled":
                self.tasks[inst] = task.replace(state="cancelled", completed_at=t_us, updated_at=t_us)
