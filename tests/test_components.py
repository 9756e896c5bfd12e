"""``Lake`` is composed, not inherited: components built in ``__init__`` with explicit inputs, flat verbs
that are one-line delegations, no state made through ``getattr(self, ...)`` or ``self.__dict__``, and
components that never import the client layer."""

from __future__ import annotations

import ast
from pathlib import Path

from lakeml.client.lake import Lake

ROOT = Path(__file__).resolve().parent.parent / "lakeml"
COMPONENTS = [ROOT / "tracking", ROOT / "registry", ROOT / "query", ROOT / "storage", ROOT / "monitoring",
              ROOT / "serving"]
# Lake members that are more than a delegation, and why
NOT_DELEGATIONS = {"__init__": "builds the components", "close": "closes the committer, then the engines",
                   "engine": "commits pending rows, then returns the engine"}


def _modules(*folders: Path) -> list[Path]:
    return sorted(p for d in folders for p in d.rglob("*.py"))


def test_components_do_not_import_the_client():
    offenders = []
    for path in _modules(*COMPONENTS):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.startswith("lakeml.client")]
    assert offenders == []


def test_no_state_through_getattr_or_dict():
    offenders = []
    for path in _modules(ROOT / "client", ROOT / "tracking", *(ROOT / "registry").glob("*.py"),
                         ROOT / "query" / "client.py", ROOT / "storage" / "health.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr")
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"):
                offenders.append(f"{path.name}:{node.lineno} {node.func.id}(self, ...)")
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                offenders.append(f"{path.name}:{node.lineno} __dict__")
    assert offenders == []


def test_lake_has_no_base_class_and_its_verbs_are_one_line_delegations():
    assert Lake.__bases__ == (object,)
    tree = ast.parse((ROOT / "client" / "lake.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Lake")
    long = []
    for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) != 1 and fn.name not in NOT_DELEGATIONS:
            long.append(fn.name)
    assert long == []


def test_components_share_their_inputs(file_lake):
    lake = file_lake
    assert lake.tracking.query is lake.query and lake.registry.tracking is lake.tracking
    assert lake.tracking.committer is lake.committer and lake.maintenance.committer is lake.committer
    assert lake.tracking.artifacts is lake.artifacts is lake.registry.artifacts
    ready = lake.query.before_read
    assert lake.tracking.before_read is ready and lake.registry.before_read is ready
    assert lake.registry.checkpoints.before_read is ready
    assert lake.engine is lake.query.engine


def test_registry_actor_is_recorded(file_lake):
    file_lake.registry_actor = "alice"
    assert file_lake.registry.actor == "alice"
    file_lake.create_model("actor-test")
    assert [e.actor for e in file_lake.registry_events("actor-test")] == ["alice"]
