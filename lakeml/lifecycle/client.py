"""``lake.projects``: model projects run as BPMN processes, with deliverables, roles and a board.

A project runs one BPMN process (default ``catalog/lifecycle/default.bpmn``) in SpiffWorkflow. Its
state (SpiffWorkflow's own JSON) and every transition are rows of ``project_events``, committed by
compare-and-swap (:mod:`lakeml.lifecycle.ledger`); ``projects`` and ``tasks`` are projections of it
for SQL users, and ``lakeml.project_board`` is the view management reads.

Who may do what: a user completes only tasks of the lanes (roles) they hold. Without a server the
user is the OS user and their roles are the project's role assignments; a server passes the token's
roles (``roles=``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from lakeml.clock import now_us
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError, RoleError, StorageError
from lakeml.ids import experiment_id_for
from lakeml.lifecycle import process as proc
from lakeml.lifecycle.deliverables import Checker, Completion
from lakeml.lifecycle.ledger import Plan, ProjectLedger
from lakeml.lifecycle.notify import Notifier, load_webhooks
from lakeml.lifecycle.records import Project, ProjectsState, Task
from lakeml.lifecycle.sync import SyncResult, find_gaps, project_row, rebuild, task_row

log = logging.getLogger("lakeml.lifecycle")

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from lakeml.query.client import QueryClient
    from lakeml.registry.client import RegistryClient
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.committer import Committer
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore
    from lakeml.tracking.client import TrackingClient

NOTIFICATIONS = "lakeml.lifecycle.notifications"  # catalog property: path of the webhook YAML
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def project_id_for(name: str) -> str:
    return "p" + experiment_id_for("project:" + name)[:15]


def _name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(f"project name {name!r} is not valid: use 1-100 letters, digits, '_', '-' or '.', "
                                "starting with a letter or digit (e.g. churn-2027)")
    return name


class Projects:
    """The model projects of one lake. The ledger is opened on first use."""

    def __init__(self, config: "LakeConfig", store: "TableStore", committer: "Committer", artifacts: "ArtifactStore",
                 tracking: "TrackingClient", registry: "RegistryClient", query: "QueryClient", *,
                 clock: Callable[[], int] = now_us, before_read: Callable[[], None] = lambda: None):
        self.config = config
        self.store = store
        self.committer = committer
        self.query = query
        self.registry = registry
        self.clock = clock
        self.before_read = before_read
        #: Who transitions are recorded as; None means the acting user (server token) or the OS user.
        self.actor: str | None = None
        self.checker = Checker(store, artifacts, tracking, registry)
        self._ledger: ProjectLedger | None = None
        self._notifier: Notifier | None = None
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def ledger(self) -> ProjectLedger:
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    self._ledger = ProjectLedger(self.store, clock=self.clock)
        return self._ledger

    @property
    def notifier(self) -> Notifier:
        """Webhooks from ``$LAKEML_NOTIFICATIONS`` or the catalog property ``lakeml.lifecycle.notifications``."""
        if self._notifier is None:
            path = os.environ.get("LAKEML_NOTIFICATIONS") or self.config.properties.get(NOTIFICATIONS)
            self._notifier = Notifier(load_webhooks(path))
        return self._notifier

    def configure_notifications(self, path: str | os.PathLike | None) -> None:
        """Send notifications to the webhooks of the YAML file at ``path`` (None: none)."""
        self._notifier = Notifier(load_webhooks(path))

    def _actor(self) -> str | None:
        from lakeml.tracking.runinfo import current_user

        return self.actor or current_user()

    def _state(self) -> ProjectsState:
        return self.ledger.state()

    @staticmethod
    def _project(st: ProjectsState, name: str) -> Project:
        pid = project_id_for(_name(name))
        if pid not in st.projects:
            known = ", ".join(sorted(p.name for p in st.projects.values())) or "none"
            raise NotFoundError(f"no model project {name!r} (projects: {known}); create it with "
                                f"'lakeml projects create {name}'")
        return st.projects[pid]

    def _commit(self, fn: Callable[[ProjectsState, int], Plan]) -> Any:
        actor = self._actor()
        plan, rows = self.ledger.commit(fn, actor=actor)
        self._after(rows)
        return plan.result

    def _after(self, rows: list[dict[str, Any]]) -> None:
        """Projections (``projects``, ``tasks``) and notifications for committed rows."""
        st = self.ledger.state()
        pbuf, tbuf = self.committer.buffer("projects"), self.committer.buffer("tasks")
        last = {r["project_id"]: r["event_seq"] for r in rows if r["project"] and r["outcome"] == "applied"}
        for r in rows:
            p = st.projects.get(r["project_id"])
            if last.get(r["project_id"]) == r["event_seq"]:  # one projects row per project and commit
                pbuf.add(project_row(Project.from_json(r["project"]), r["event_seq"]))
            inst = r.get("task_instance")
            if inst and inst in st.tasks:
                t = st.tasks[inst]  # as of this commit (a commit's rows of one task: the last state wins)
                tbuf.add(task_row(t, r["event_time"], r["event_seq"]))
            self._notify(r, p, st)

    def _notify(self, r: dict[str, Any], p: Project | None, st: ProjectsState) -> None:
        if not self.notifier.webhooks or p is None:
            return
        base = {"project": r["project_name"], "project_id": r["project_id"], "status": p.status,
                "actor": r["actor"], "time": datetime.fromtimestamp(r["event_time"] / 1e6, timezone.utc).isoformat()}
        if r["event_type"] == "task_ready":
            t = st.tasks.get(r["task_instance"])
            self.notifier.send({"event": "task_ready", **base, "task": r["task_id"], "task_name": r["task_name"],
                                "role": r["role"], "assignee": r["assignee"], "users": p.users_in(r["role"]),
                                "required": list(t.required) if t else []})
        elif r["event_type"] == "step_idle":
            t = st.tasks.get(r["task_instance"])
            self.notifier.send({"event": "step_idle", **base, "task": r["task_id"], "task_name": r["task_name"],
                                "role": r["role"], "assignee": r["assignee"], "users": p.users_in(r["role"] or ""),
                                "days_idle": round(t.days_ready(r["event_time"]), 2) if t else None,
                                "sla_days": t.sla_days if t else None})
        if r["outcome"] == "applied" and r["status_before"] != r["status_after"] and r["status_after"]:
            self.notifier.send({"event": "status_changed", **base, "status_before": r["status_before"],
                                "status": r["status_after"], "comment": r.get("comment")})

    # -- projects -----------------------------------------------------------------------------
    def create(self, name: str, *, problem: str | None = None, customer: str | None = None,
               target_date: date | str | None = None, expected_value: float | None = None,
               roles: Mapping[str, str | Iterable[str]] | None = None, experiments: Iterable[str] = (),
               models: Iterable[str] = (), process: str | os.PathLike | None = None) -> Project:
        """Create a model project and start its process; the first task becomes ready.

        ``roles`` maps a role (a lane of the BPMN, e.g. ``data_scientist``) to its user(s).
        ``process`` is a BPMN file (default: ``catalog/lifecycle/default.bpmn``). Raises
        :class:`~lakeml.errors.ConflictError` if the name is taken.
        """
        name = _name(name)
        process_path = str(Path(process).resolve()) if process is not None else "default"
        prc = self._process(process_path)
        role_map = _roles_arg(roles, prc.roles)
        tdate = _date_arg(target_date)
        value = float(expected_value) if expected_value is not None else None
        exps, mods = _names(experiments, "experiment"), _names(models, "model")
        pid = project_id_for(name)

        def plan(st: ProjectsState, now: int) -> Plan:
            if pid in st.projects:
                raise ConflictError(f"model project {name!r} already exists (status {st.projects[pid].status}); "
                                    "pick another name or see 'lakeml projects show " + name + "'")
            actor = self._actor()
            wf = prc.start()
            p = Project(pid, name, problem, customer, "proposed", process_path, tdate, value, role_map, exps, mods,
                        now, actor, now, actor, now)
            p = p.replace(status=_status(prc, wf, p.status))
            rows = [_row(p, "project_created", status_before=None, workflow=prc.dumps(wf),
                         comment=problem)]
            rows += _ready_rows(prc, wf, p, st)
            return Plan(rows, result=p)

        return self._commit(plan)

    def get(self, name: str) -> Project:
        """A model project by name."""
        return self._project(self._state(), name)

    def list(self, *, status: str | None = None, customer: str | None = None) -> list[Project]:
        """Model projects (of a status, of a customer), by name."""
        st = self._state()
        return sorted((p for p in st.projects.values() if (status is None or p.status == status)
                       and (customer is None or p.customer == customer)), key=lambda p: p.name)

    def show(self, name: str) -> dict[str, Any]:
        """A project with its ready tasks, its completed tasks and its history (events without the state)."""
        st = self._state()
        p = self._project(st, name)
        return {"project": p, "ready": st.tasks_of(p.project_id), "done": st.tasks_of(p.project_id, "completed"),
                "events": self.ledger.events(p.project_id)}

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every transition of the project, oldest first (rows of ``project_events`` without the state)."""
        return self.ledger.events(self.get(name).project_id)

    def assign(self, name: str, role: str, users: str | Iterable[str], *, replace: bool = False) -> Project:
        """Give ``users`` the role ``role`` on the project (added to those who hold it; ``replace=True``: instead)."""
        add = [users] if isinstance(users, str) else list(users)
        if not add or not all(isinstance(u, str) and u.strip() for u in add):
            raise InvalidInputError(f"assign needs one or more user names, got {users!r}")

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            r = proc.role_key(role)
            known = self._process(p.process).roles
            if r not in known:
                raise InvalidInputError(f"role {role!r} is not a lane of project {name!r}'s process; roles: "
                                        f"{', '.join(known)}")
            cur = [] if replace else p.users_in(r)
            roles = {**p.roles, r: cur + [u for u in add if u not in cur]}
            new = p.replace(roles=roles, updated_at=now, updated_by=self._actor())
            return Plan([_row(new, "roles_assigned", role=r, comment=", ".join(add), status_before=p.status)],
                        result=new)

        return self._commit(plan)

    def link(self, name: str, *, experiments: Iterable[str] = (), models: Iterable[str] = ()) -> Project:
        """Link experiments and registered models to the project (their runs and versions become its evidence)."""
        exps, mods = _names(experiments, "experiment"), _names(models, "model")

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            new = p.replace(experiments=p.experiments + [e for e in exps if e not in p.experiments],
                            models=p.models + [m for m in mods if m not in p.models], updated_at=now,
                            updated_by=self._actor())
            if new.experiments == p.experiments and new.models == p.models:
                return Plan(result=p)
            return Plan([_row(new, "project_linked", comment=", ".join(exps + mods), status_before=p.status)],
                        result=new)

        return self._commit(plan)

    def cancel(self, name: str, *, reason: str, roles: Iterable[str] | None = None) -> Project:
        """Cancel a project (its open tasks are cancelled; the process stops). Needs a reason."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInputError("cancelling a project needs a reason, e.g. reason='value below cost'")

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            if p.status in proc.CLOSED:
                raise ConflictError(f"model project {name!r} is already {p.status}")
            actor = self._actor()
            if "customer" not in self._held(p, actor, roles) and actor != p.created_by:
                raise RoleError(f"user {actor!r} may not cancel project {name!r}: only its customer "
                                f"({', '.join(p.users_in('customer')) or 'nobody assigned'}) or its creator "
                                f"({p.created_by}) may")
            prc = self._process(p.process)
            wf = prc.loads(st.workflows[p.project_id])
            proc.cancel(wf)
            new = p.replace(status="cancelled", cancel_reason=reason, updated_at=now, updated_by=actor,
                            status_since=now)
            rows = [_task_row(new, t, "task_cancelled", comment=reason) for t in st.tasks_of(p.project_id)]
            rows.append(_row(new, "project_cancelled", comment=reason, status_before=p.status,
                             workflow=prc.dumps(wf), role=",".join(sorted(roles)) if roles else None))
            return Plan(rows, result=new)

        return self._commit(plan)

    # -- tasks --------------------------------------------------------------------------------
    def tasks(self, name: str | None = None, *, user: str | None = None, roles: Iterable[str] | None = None,
              mine: bool = False, state: str | None = "ready") -> list[Task]:
        """Tasks (of one project; ``state=None``: all). ``mine=True``: those the acting user may complete
        (assigned to them, or unassigned in a role they hold)."""
        st = self._state()
        pids = [self._project(st, name).project_id] if name is not None else sorted(st.projects)
        who = user or self._actor()
        out = []
        for pid in pids:
            p = st.projects[pid]
            held = set(roles) if roles is not None else set(p.roles_of(who))
            for t in st.tasks_of(pid, state):
                if mine and not (t.assignee == who or (t.assignee is None and t.role in held)):
                    continue
                out.append(t)
        return out

    def complete(self, name: str, task: str, *, deliverables: Mapping[str, Any] | None = None,
                 run_id: str | None = None, model: str | None = None, decision: str = "done",
                 comment: str | None = None, roles: Iterable[str] | None = None) -> list[Task]:
        """Complete a ready task of the project after checking each required deliverable.

        ``deliverables`` maps a deliverable's key (``link:mart``, ``doc:mart``...) to what is handed in
        (see :mod:`lakeml.lifecycle.deliverables`). ``decision`` (``done``, ``rework``, ``cancel``) is
        what the process's gateways read. ``roles``: the caller's roles (a server token's); default:
        the roles the project assigns to the acting user. Returns the tasks that became ready.

        Raises :class:`~lakeml.errors.RoleError` when the user does not hold the task's role,
        :class:`~lakeml.errors.InvalidInputError` listing exactly the missing deliverables (the refusal
        is recorded), :class:`~lakeml.errors.ConflictError` when someone else completed it first.
        """
        if decision not in proc.DECISIONS:
            raise InvalidInputError(f"decision {decision!r} is not one of {', '.join(proc.DECISIONS)}")
        evidence = {str(k): str(v) for k, v in (deliverables or {}).items() if v is not None}
        actor = self._actor()
        pre = self._state()
        p0 = self._project(pre, name)
        t0 = self._ready_task(pre, p0, task)
        held = self._held(p0, actor, roles)
        if t0.role not in held:
            raise RoleError(f"user {actor!r} may not complete task {t0.task_id!r} of project {name!r}: it belongs "
                            f"to role {t0.role!r}, and {actor!r} holds {', '.join(sorted(held)) or 'no role'} on "
                            f"this project. Ask a {t0.role} ({', '.join(p0.users_in(t0.role)) or 'nobody assigned'})"
                            f", or assign the role with 'lakeml projects assign {name} {t0.role} {actor}'")
        if t0.assignee and t0.assignee != actor:
            raise RoleError(f"task {t0.task_id!r} of project {name!r} is assigned to {t0.assignee!r}, not "
                            f"{actor!r}; reassign it with 'lakeml tasks reassign {name} {t0.task_id} {actor}'")
        prc = self._process(p0.process)
        step = prc.step(t0.task_id)
        if decision != "done" and not step.decides:
            raise InvalidInputError(f"task {t0.task_id!r} is followed by no gateway that reads a decision, so "
                                    f"{decision!r} would be ignored; complete it with decision 'done', or cancel the "
                                    f"project with 'lakeml projects cancel {name} --reason ...'")
        unknown = sorted(set(evidence) - {d.key for d in step.deliverables})
        if unknown:
            raise InvalidInputError(f"task {t0.task_id!r} does not ask for {', '.join(unknown)}; it requires "
                                    f"{', '.join(map(str, step.deliverables)) or 'no deliverables'}")
        comp = Completion(evidence, run_id, model, actor, frozenset(held))
        delivered, missing = ([], []) if decision == "cancel" else self.checker.check(p0, t0, list(step.deliverables),
                                                                                      comp)
        if missing:
            msg = (f"task {t0.task_id!r} of project {name!r} cannot be completed: {len(missing)} deliverable(s) "
                   "missing:\n" + "\n".join(f"  - {m}" for m in missing))

            def refuse(st: ProjectsState, now: int) -> Plan:
                p = self._project(st, name)
                t = self._ready_task(st, p, task, instance=t0.task_instance)
                return Plan([_task_row(p, t, "task_refused", outcome="refused", role=t.role,
                                       comment="; ".join(missing), deliverables=missing)],
                            error=InvalidInputError(msg))

            return self._commit(refuse)
        linked = [d["name"] for d in delivered if d["kind"] == "model_version"]

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            t = self._ready_task(st, p, task, instance=t0.task_instance)
            wf = prc.loads(st.workflows[p.project_id])
            sp = next((x for x in proc.ready_tasks(wf) if str(x.id) == t.task_instance), None)
            if sp is None:  # pragma: no cover - the ledger and the workflow always agree
                raise ConflictError(f"task {t.task_id!r} of project {name!r} is no longer ready in its workflow")
            proc.run_task(wf, sp, decision)
            new = p.replace(models=p.models + [m for m in linked if m not in p.models], updated_at=now,
                            updated_by=actor)
            new = new.replace(status=_status(prc, wf, p.status))
            if new.status != p.status:
                new = new.replace(status_since=now)
            rows = [_task_row(new, t, "task_completed", role=t.role, comment=comment, deliverables=delivered,
                              decision=decision, status_before=p.status, workflow=prc.dumps(wf))]
            ready = _ready_rows(prc, wf, new, st)
            rows += ready
            return Plan(rows, result=[r["task_instance"] for r in ready])

        insts = self._commit(plan)
        st = self._state()
        return [st.tasks[i] for i in insts]

    def approve(self, name: str, task: str, *, role: str | None = None, comment: str | None = None,
                roles: Iterable[str] | None = None) -> Task:
        """Record an approval of a ready task by the acting user, in a role they hold (its ``approval:<role>``)."""
        actor = self._actor()

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            t = self._ready_task(st, p, task)
            held = self._held(p, actor, roles)
            r = proc.role_key(role) if role else None
            wanted = [d.name for d in self._process(p.process).step(t.task_id).deliverables if d.kind == "approval"]
            if r is None:
                cand = [w for w in wanted if w in held]
                if not cand:
                    raise RoleError(f"user {actor!r} holds none of the roles whose approval task {t.task_id!r} "
                                    f"needs ({', '.join(wanted) or 'none'})")
                r = cand[0]
            if r not in held:
                raise RoleError(f"user {actor!r} does not hold role {r!r} on project {name!r}")
            return Plan([_task_row(p, t, "approval_given", role=r, comment=comment)], result=t)

        self._commit(plan)
        return self._state().tasks[self._ready_task(self._state(), self.get(name), task).task_instance]

    def reassign(self, name: str, task: str, user: str, *, comment: str | None = None) -> Task:
        """Assign a ready task to ``user`` (who must hold its role on the project)."""

        def plan(st: ProjectsState, now: int) -> Plan:
            p = self._project(st, name)
            t = self._ready_task(st, p, task)
            if user not in p.users_in(t.role):
                raise RoleError(f"user {user!r} does not hold role {t.role!r} on project {name!r} "
                                f"({', '.join(p.users_in(t.role)) or 'nobody'} does); assign it first with "
                                f"'lakeml projects assign {name} {t.role} {user}'")
            return Plan([_task_row(p, t, "task_reassigned", role=t.role, assignee=user, comment=comment)],
                        result=t.task_instance)

        inst = self._commit(plan)
        return self._state().tasks[inst]

    def check_sla(self) -> list[Task]:
        """Record (once per task) and notify each ready task idle past its ``sla_days``; returns them."""

        def plan(st: ProjectsState, now: int) -> Plan:
            rows = []
            for t in st.tasks.values():
                if (t.state == "ready" and t.sla_days is not None and t.days_ready(now) > t.sla_days
                        and not t.idle_notified):
                    rows.append(_task_row(st.projects[t.project_id], t, "step_idle", role=t.role,
                                          assignee=t.assignee,
                                          comment=f"idle {t.days_ready(now):.1f} days; SLA {t.sla_days:g} days"))
            return Plan(rows, result=[r["task_instance"] for r in rows])

        insts = self._commit(plan)
        st = self._state()
        return [st.tasks[i] for i in insts]

    # -- registry ties ------------------------------------------------------------------------------
    def steps_done(self, model_name: str) -> frozenset[str]:
        """BPMN ids of the tasks completed (and not reopened by rework) in the projects linking ``model_name``;
        what the promotion gate rule ``lifecycle_step_done`` checks."""
        st = self._state()
        out: set[str] = set()
        for p in st.projects.values():
            if model_name not in p.models or p.status == "cancelled":
                continue
            latest: dict[str, Task] = {}
            for t in st.tasks_of(p.project_id, None):  # oldest first: the last instance of each step wins
                latest[t.task_id] = t
            out |= {tid for tid, t in latest.items() if t.state == "completed" and t.decision == "done"}
        return frozenset(out)

    # -- board ----------------------------------------------------------------------------------
    def board(self, *, status: str | None = None, customer: str | None = None, role: str | None = None) -> "pl.DataFrame":
        """The ``lakeml.project_board`` view (after committing pending rows and rebuilding any
        ``projects``/``tasks`` rows the ledger has and they lack, see :meth:`sync`), filtered."""
        self.committer.flush()
        self.before_read()
        try:
            self.sync()
        except StorageError as e:  # a reader that may not write (read-only keys) still gets the board
            log.warning("lakeml: could not repair the projects/tasks tables (%s); the board may lag the "
                        "ledger until 'lakeml projects sync' runs with write access", e)
        where, params = [], []
        for col, val in (("status", status), ("customer", customer), ("role", role)):
            if val is not None:
                where.append(f"{col} = ?" if col != "role" else "list_contains(string_split(role, ', '), ?)")
                params.append(val)
        q = "SELECT * FROM lakeml.project_board" + (" WHERE " + " AND ".join(where) if where else "")
        return self.query.sql(q + " ORDER BY status, project", params=params or None)

    def sync(self) -> SyncResult:
        """Rebuild the ``projects`` and ``tasks`` rows that ``project_events`` has and they lack (a process
        that died between its ledger commit and its projection rows leaves such a gap); they are committed
        before it returns. One query when they agree. :meth:`board` runs it first."""
        self.before_read()
        st = self._state()
        gaps = find_gaps(self.query.engine)
        out = rebuild(st, gaps, self.committer) if gaps else SyncResult(ledger_seq=st.seq)
        if out.rows:
            self.committer.flush()
        return out

    def weekly_summary(self, path: str | os.PathLike, *, now: datetime | None = None) -> Path:
        """Write the weekly management summary as HTML: counts per status, time to production per
        project, stuck steps. Returns the path."""
        from lakeml.lifecycle.summary import weekly_html

        board = self.board()
        st = self._state()
        html = weekly_html(board, st, now or datetime.now(timezone.utc))
        out = Path(path)
        out.write_text(html, encoding="utf-8")
        return out

    # -- helpers --------------------------------------------------------------------------------
    def _process(self, path: str) -> proc.Process:
        return proc.load_process(None if path == "default" else path)

    @staticmethod
    def _held(p: Project, actor: str | None, roles: Iterable[str] | None) -> set[str]:
        if roles is not None:
            return {proc.role_key(r) for r in roles}
        return set(p.roles_of(actor))

    @staticmethod
    def _ready_task(st: ProjectsState, p: Project, task: str, *, instance: str | None = None) -> Task:
        if instance is not None:
            t = st.tasks.get(instance)
            if t is None or t.state != "ready":
                by = f" by {t.completed_by}" if t is not None and t.completed_by else ""
                state = t.state if t is not None else "gone"
                raise ConflictError(f"task {task!r} of project {p.name!r} was {state}{by} while you were working "
                                    "on it; nothing of yours was recorded. See 'lakeml projects show "
                                    f"{p.name}' for what is ready now")
            return t
        ready = [t for t in st.tasks_of(p.project_id) if task in (t.task_id, t.task_instance)]
        if not ready:
            now_ready = ", ".join(t.task_id for t in st.tasks_of(p.project_id)) or "none"
            raise ConflictError(f"task {task!r} of project {p.name!r} is not ready (status {p.status}; ready "
                                f"tasks: {now_ready})")
        return ready[0]


# -- rows -----------------------------------------------------------------------------------------
def _row(p: Project, event_type: str, *, status_before: str | None = None, workflow: str | None = None,
         comment: str | None = None, role: str | None = None, outcome: str = "applied") -> dict[str, Any]:
    return {"project_id": p.project_id, "project_name": p.name, "event_type": event_type, "outcome": outcome,
            "role": role, "task_id": None, "task_name": None, "task_instance": None, "assignee": None,
            "deliverables": None, "comment": comment, "decision": None, "status_before": status_before,
            "status_after": p.status, "project": p.to_json(), "workflow_state": workflow}


def _task_row(p: Project, t: Task, event_type: str, *, outcome: str = "applied", role: str | None = None,
              comment: str | None = None, deliverables: Any = None, decision: str | None = None,
              status_before: str | None = None, workflow: str | None = None,
              assignee: str | None = None) -> dict[str, Any]:
    row = _row(p, event_type, status_before=status_before or p.status, workflow=workflow, comment=comment,
               role=role, outcome=outcome)
    row.update(task_id=t.task_id, task_name=t.task_name, task_instance=t.task_instance,
               assignee=assignee if assignee is not None else t.assignee,
               deliverables=json.dumps(deliverables, default=str) if deliverables is not None else None,
               decision=decision)
    if outcome != "applied":
        row["project"] = None
    return row


def _ready_rows(prc: proc.Process, wf: Any, p: Project, st: ProjectsState) -> list[dict[str, Any]]:
    rows = []
    for sp in proc.ready_tasks(wf):
        inst = str(sp.id)
        if inst in st.tasks:
            continue
        step = prc.step(sp.task_spec.bpmn_id)
        users = p.users_in(step.role)
        row = _row(p, "task_ready", role=step.role, status_before=p.status)
        row.update(task_id=step.task_id, task_name=step.name, task_instance=inst,
                   assignee=users[0] if len(users) == 1 else None,
                   deliverables=json.dumps({"required": [str(d) for d in step.deliverables],
                                            "sla_days": step.sla_days}))
        rows.append(row)
    return rows


def _status(prc: proc.Process, wf: Any, current: str) -> str:
    """The project status the workflow is at: its end event's, else its ready tasks' (the most advanced)."""
    if wf.is_completed():
        ends = [prc.end_status[e] for e in proc.reached_end(wf) if e in prc.end_status]
        return ends[-1] if ends else "in_production"
    states = [prc.step(t.task_spec.bpmn_id).status for t in proc.ready_tasks(wf)]
    states = [s for s in states if s]
    if not states:
        return current
    return max(states, key=proc.STATUSES.index)


def _roles_arg(roles: Mapping[str, Any] | None, known: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for role, users in (roles or {}).items():
        r = proc.role_key(role)
        if r not in known:
            raise InvalidInputError(f"role {role!r} is not a lane of the process; its roles are {', '.join(known)}")
        us = [users] if isinstance(users, str) else list(users)
        out[r] = [u.strip() for u in us if isinstance(u, str) and u.strip()]
    return out


def _date_arg(d: date | str | None) -> str | None:
    if d is None:
        return None
    if isinstance(d, date):
        return d.isoformat()
    try:
        return date.fromisoformat(str(d)).isoformat()
    except ValueError:
        raise InvalidInputError(f"target date {d!r} is not a date; write it as YYYY-MM-DD") from None


def _names(items: Iterable[str], what: str) -> list[str]:
    out = []
    for x in [items] if isinstance(items, str) else items:
        if not isinstance(x, str) or not x.strip():
            raise InvalidInputError(f"{what} names must be non-empty text, got {x!r}")
        out.append(x.strip())
    return out
