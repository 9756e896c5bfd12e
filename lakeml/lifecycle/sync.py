"""Self-healing projections: rebuild ``projects`` and ``tasks`` rows that ``project_events`` has and they lack.

A transition is one compare-and-swap commit to ``project_events``; its ``projects`` and ``tasks`` rows
follow through the committer. A process that dies between the two leaves the projections behind the
ledger. The ledger is the truth, so the gap is found with one query (for each project, the last
applied event that carries its record; for each task instance, its last event; against the highest
``event_seq`` of each in the projections) and closed by appending the current state of each lagging
project and task with that event's ``event_seq``: the latest-row views (``projects_latest``,
``tasks_latest``, ``project_board``) then agree with the ledger again. Intermediate states are not
re-created; their history is in ``project_events``. Appending the same row twice (two processes
syncing at once) is harmless: it carries the same ``event_seq`` and content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.lifecycle.records import Project, ProjectsState, Task

GAP_SQL = """
WITH pe AS (
    SELECT project_id, max(event_seq) AS seq FROM lakeml.project_events
    WHERE outcome = 'applied' AND project IS NOT NULL GROUP BY project_id
), pp AS (
    SELECT project_id, max(event_seq) AS seq FROM lakeml.projects GROUP BY project_id
), te AS (
    SELECT task_instance, max(event_seq) AS seq, epoch_us(arg_max(event_time, event_seq)) AS t
    FROM lakeml.project_events WHERE task_instance IS NOT NULL GROUP BY task_instance
), tt AS (
    SELECT task_instance, max(event_seq) AS seq FROM lakeml.tasks GROUP BY task_instance
)
SELECT 'project' AS kind, pe.project_id AS id, pe.seq, NULL::BIGINT AS t
FROM pe LEFT JOIN pp USING (project_id) WHERE pp.seq IS NULL OR pp.seq < pe.seq
UNION ALL
SELECT 'task', te.task_instance, te.seq, te.t
FROM te LEFT JOIN tt USING (task_instance) WHERE tt.seq IS NULL OR tt.seq < te.seq
ORDER BY 1, 2
"""
TABLES = ["project_events", "projects", "tasks"]


@dataclass
class SyncResult:
    """What a sync found missing and appended."""

    projects: list[str] = field(default_factory=list)  # names of the projects whose row was rebuilt
    tasks: list[str] = field(default_factory=list)  # task instances whose row was rebuilt
    ledger_seq: int = 0  # the ledger's last event_seq when the sync ran

    @property
    def rows(self) -> int:
        return len(self.projects) + len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {"projects": self.projects, "tasks": self.tasks, "rows": self.rows, "ledger_seq": self.ledger_seq}


def project_row(p: "Project", event_seq: int) -> tuple:
    """A ``projects`` row (catalog/tables/projects.yaml order) for project ``p`` as of ``event_seq``."""
    days = (date.fromisoformat(p.target_date) - date(1970, 1, 1)).days if p.target_date else None
    return (p.project_id, p.name, p.problem, p.customer, p.status, p.process, days, p.expected_value,
            [(k, ",".join(v)) for k, v in sorted(p.roles.items())], list(p.experiments), list(p.models),
            p.created_at, p.created_by, p.updated_at, p.updated_by, p.status_since, p.cancel_reason, event_seq)


def task_row(t: "Task", updated_at: int, event_seq: int) -> tuple:
    """A ``tasks`` row (catalog/tables/tasks.yaml order) for task ``t`` recorded at ``updated_at`` (µs)."""
    return (t.project_id, t.task_instance, t.task_id, t.task_name, t.role, t.assignee, t.state, list(t.required),
            t.sla_days, t.ready_at, t.completed_at, t.completed_by, t.blocked_by, updated_at, event_seq)


def find_gaps(engine: Any) -> list[tuple[str, str, int, int | None]]:
    """``(kind, id, event_seq, event_time_us)`` of each project and task instance whose projection row is
    missing or older than the ledger (kind ``project`` or ``task``)."""
    _, rows = engine.rows(GAP_SQL, tables=TABLES)
    return [(k, i, int(s), int(t) if t is not None else None) for k, i, s, t in rows]


def rebuild(state: "ProjectsState", gaps: list[tuple[str, str, int, int | None]], committer: Any) -> SyncResult:
    """Append the rows that close ``gaps``, from the ledger's folded ``state``; the caller flushes."""
    out = SyncResult(ledger_seq=state.seq)
    pbuf, tbuf = committer.buffer("projects"), committer.buffer("tasks")
    for kind, key, seq, t_us in gaps:
        if seq > state.seq:  # committed after the state was read: its writer (or the next sync) adds it
            continue
        if kind == "project" and key in state.projects:
            pbuf.add(project_row(state.projects[key], seq))
            out.projects.append(state.projects[key].name)
        elif kind == "task" and key in state.tasks:
            task = state.tasks[key]
            tbuf.add(task_row(task, t_us if t_us is not None else task.updated_at, seq))
            out.tasks.append(key)
    return out
