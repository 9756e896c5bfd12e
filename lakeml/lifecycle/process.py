"""A lifecycle process: a BPMN 2.0 file parsed and run by SpiffWorkflow (no engine of our own).

Each user task of the process sits in a lane (its role) and declares, as spiffworkflow extension
properties, its required deliverables (``deliverable.<n>``), the project status while it is ready
(``status``) and its idle limit in days (``sla_days``). End events may carry a ``status`` too.
Gateways read the completer's ``decision`` (``done``, ``rework``, ``cancel``) from the task data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from SpiffWorkflow.bpmn import BpmnWorkflow

STATUSES = ("proposed", "in_development", "validation", "approved", "in_production", "retired", "cancelled")
CLOSED = ("retired", "cancelled")
KINDS = ("artifact", "table", "link", "doc", "metric", "model_version", "approval")
DECISIONS = ("done", "rework", "cancel")
_METRIC = re.compile(r"^\s*([A-Za-z0-9_.\-/ ]+?)\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+\-]+)\s*$")


def role_key(name: str) -> str:
    """A role as users and tokens name it: the lane name in lower case, spaces as underscores."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


@dataclass(frozen=True)
class Deliverable:
    """One required deliverable of a user task, e.g. ``link:mart`` or ``metric:auc >= 0.8``."""

    kind: str
    name: str = ""  # path, table identifier, link/doc name, metric key, role
    op: str | None = None  # metric comparison
    bound: float | None = None

    @property
    def key(self) -> str:
        """How evidence for it is named: ``link:mart``, ``metric:auc``, ``model_version``."""
        return self.kind if self.kind == "model_version" else f"{self.kind}:{self.name}"

    def __str__(self) -> str:
        if self.kind == "metric":
            return f"metric:{self.name} {self.op} {self.bound:g}"
        return self.key

    @classmethod
    def parse(cls, text: str, *, element: str) -> "Deliverable":
        raw = str(text).strip()
        kind, _, rest = raw.partition(":")
        kind, rest = kind.strip(), rest.strip()
        if kind not in KINDS:
            raise InvalidInputError(f"BPMN element {element!r}: unknown deliverable kind {kind!r} in {raw!r}; "
                                    f"the kinds are {', '.join(KINDS)} (e.g. 'link:mart', 'metric:auc >= 0.8')")
        if kind == "model_version":
            return cls(kind)
        if not rest:
            raise InvalidInputError(f"BPMN element {element!r}: deliverable {raw!r} names nothing after "
                                    f"'{kind}:'; write e.g. '{kind}:report'")
        if kind == "metric":
            m = _METRIC.match(rest)
            if not m:
                raise InvalidInputError(f"BPMN element {element!r}: metric deliverable {raw!r} must read "
                                        "'metric:<key> >= <number>' (or <=, >, <, ==)")
            return cls(kind, m[1], m[2], float(m[3]))
        if kind == "approval":
            return cls(kind, role_key(rest))
        return cls(kind, rest)


@dataclass(frozen=True)
class Step:
    """A user task of the process, as declared."""

    task_id: str
    name: str
    role: str
    deliverables: tuple[Deliverable, ...]
    status: str | None
    sla_days: float | None
    decides: bool = False  # an exclusive gateway follows: the completer's decision (rework, cancel) counts


def default_process_path() -> Path:
    from lakeml.resources import data_dir

    return data_dir("catalog") / "lifecycle" / "default.bpmn"


class Process:
    """A parsed, checked BPMN process (thread-safe; workflows are made from it)."""

    def __init__(self, spec: Any, steps: dict[str, Step], end_status: dict[str, str], source: str):
        self.spec = spec
        self.steps = steps
        self.end_status = end_status
        self.source = source

    @property
    def roles(self) -> list[str]:
        return sorted({s.role for s in self.steps.values()})

    def step(self, task_id: str) -> Step:
        try:
            return self.steps[task_id]
        except KeyError:
            raise NotFoundError(f"the process has no user task {task_id!r}; its tasks are "
                                f"{', '.join(self.steps)}") from None

    # -- workflows ----------------------------------------------------------------------------
    def start(self) -> "BpmnWorkflow":
        from SpiffWorkflow.bpmn import BpmnWorkflow

        wf = BpmnWorkflow(self.spec)
        wf.do_engine_steps()
        return wf

    @staticmethod
    def dumps(wf: "BpmnWorkflow") -> str:
        return _serializer().serialize_json(wf)

    @staticmethod
    def loads(text: str) -> "BpmnWorkflow":
        return _serializer().deserialize_json(text)


def ready_tasks(wf: "BpmnWorkflow") -> list[Any]:
    """The user tasks waiting for a person, oldest first."""
    from SpiffWorkflow.util.task import TaskState

    return list(wf.get_tasks(state=TaskState.READY, manual=True))


def run_task(wf: "BpmnWorkflow", task: Any, decision: str) -> None:
    """Complete ``task`` with ``decision`` and let the engine move on to the next user tasks."""
    task.data["decision"] = decision
    task.run()
    wf.do_engine_steps()


def cancel(wf: "BpmnWorkflow") -> None:
    wf.cancel()


def reached_end(wf: "BpmnWorkflow") -> list[str]:
    """BPMN ids of the end events the workflow has reached."""
    from SpiffWorkflow.bpmn.specs.defaults import EndEvent
    from SpiffWorkflow.util.task import TaskState

    return [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED)
            if isinstance(t.task_spec, EndEvent)]


@lru_cache(maxsize=1)
def _serializer() -> Any:
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime: float) -> Process:
    return parse_bpmn(Path(path).read_bytes(), source=path)


def load_process(path: str | Path | None = None) -> Process:
    """The process of a BPMN file (default: ``catalog/lifecycle/default.bpmn``), checked.

    Raises :class:`InvalidInputError` naming the BPMN element at fault: a user task without a lane,
    an unknown deliverable kind, an unknown status, a malformed ``sla_days``.
    """
    p = Path(path) if path is not None else default_process_path()
    if not p.is_file():
        raise NotFoundError(f"no BPMN file at {str(p)!r}; pass the path of a .bpmn file")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


def parse_bpmn(data: bytes, *, source: str = "<bpmn>") -> Process:
    """Parse and check BPMN XML (one executable process)."""
    from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
    from SpiffWorkflow.bpmn.specs.defaults import EndEvent, ExclusiveGateway
    from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser

    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_str(data, filename=source)
        executable = list(parser.get_process_ids())
        if len(executable) != 1:
            raise InvalidInputError(f"{source}: a lifecycle BPMN file must hold exactly one process, it holds "
                                    f"{len(executable)} ({', '.join(executable) or 'none'})")
        spec = parser.get_spec(executable[0])
    except ValidationException as e:
        raise InvalidInputError(f"{source}: invalid BPMN: {e}") from e
    except InvalidInputError:
        raise
    except Exception as e:  # lxml syntax errors, ...
        raise InvalidInputError(f"{source}: cannot parse BPMN: {type(e).__name__}: {e}") from e
    steps: dict[str, Step] = {}
    end_status: dict[str, str] = {}
    for ts in spec.task_specs.values():
        bpmn_id = getattr(ts, "bpmn_id", None)
        if bpmn_id is None:
            continue
        props = (getattr(ts, "extensions", None) or {}).get("properties", {}) or {}
        status = props.get("status")
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"BPMN element {bpmn_id!r}: unknown status {status!r}; use one of "
                                    f"{', '.join(STATUSES)}")
        if isinstance(ts, EndEvent):
            if status:
                end_status[bpmn_id] = status
            continue
        if not getattr(ts, "manual", False):
            continue
        if not ts.lane:
            raise InvalidInputError(f"BPMN element {bpmn_id!r} ({ts.bpmn_name or 'unnamed'} user task) is in no "
                                    "lane; put every user task in the lane of the role that does it")
        dels = tuple(Deliverable.parse(val, element=bpmn_id) for key, val in sorted(props.items())
                     if key == "deliverable" or key.startswith("deliverable."))
        sla = props.get("sla_days")
        try:
            sla_days = float(sla) if sla not in (None, "") else None
        except ValueError:
            raise InvalidInputError(f"BPMN element {bpmn_id!r}: sla_days must be a number of days, "
                                    f"got {sla!r}") from None
        decides = any(isinstance(o, ExclusiveGateway) for o in ts.outputs)
        steps[bpmn_id] = Step(bpmn_id, ts.bpmn_name or bpmn_id, role_key(ts.lane), dels, status, sla_days, decides)
    if not steps:
        raise InvalidInputError(f"{source}: the process has no user tasks; a lifecycle needs at least one")
    return Process(spec, steps, end_status, source)
