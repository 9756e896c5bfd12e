"""The ``MLmodel`` file stored beside every logged model: flavor, signature, requirements.

It is YAML in the spirit of MLflow's file of the same name, so people and tools can read
what a model folder holds and what it needs before loading it.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeml.entities import _Record
from lakeml.errors import InvalidInputError, MissingDependencyError, NotFoundError

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(?:(==|>=|<=|~=|!=|>|<)\s*([^\s;,]+))?")


@dataclass(frozen=True)
class ModelInfo(_Record):
    """What ``log_model`` stored: where, which flavor, the signature and the pip requirements."""

    model_uri: str
    flavor: str
    artifact_path: str
    run_id: str | None
    signature: dict[str, Any] | None
    requirements: list[str]
    options: dict[str, Any]
    model_id: str
    created_at: datetime | None = None
    python_version: str | None = None
    lakeml_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    registered_version: int | None = None

    @classmethod
    def from_mlmodel(cls, data: dict[str, Any], model_uri: str) -> "ModelInfo":
        flavor = data.get("flavor")
        created = data.get("created_at")
        return cls(model_uri=model_uri, flavor=flavor, artifact_path=data.get("artifact_path", ""),
                   run_id=data.get("run_id"), signature=data.get("signature"),
                   requirements=list(data.get("requirements") or []),
                   options=dict((data.get("flavors") or {}).get(flavor) or {}), model_id=data.get("model_id", ""),
                   created_at=datetime.fromisoformat(created) if isinstance(created, str) else created,
                   python_version=data.get("python_version"), lakeml_version=data.get("lakeml_version"),
                   metadata=dict(data.get("metadata") or {}))


def flavor_of(meta: Any) -> str | None:
    """The flavor an MLmodel file names: lakeml's ``flavor``, or for a model saved by MLflow the first of
    its ``flavors`` other than ``python_function`` (else ``python_function``); None if it names none."""
    if not isinstance(meta, dict):
        return None
    if meta.get("flavor"):
        return meta["flavor"]
    flavors = meta.get("flavors")
    if isinstance(flavors, dict) and flavors:
        return next((str(f) for f in flavors if f != "python_function"), "python_function")
    return None


def from_mlflow(data: dict[str, Any]) -> dict[str, Any]:
    """An MLmodel saved by MLflow (``flavors`` only) as lakeml reads it, for the flavors lakeml loads the
    same way: ``sklearn`` (MLflow's pickled/cloudpickled estimator is ``model_file``). Others stay as they are."""
    flavors = data.get("flavors")
    sk = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if isinstance(sk, dict) and sk.get("pickled_model") and sk.get("serialization_format", "cloudpickle") in (
            "pickle", "cloudpickle"):
        opts = {**sk, "model_file": sk["pickled_model"]}
        return {**data, "flavor": "sklearn", "flavors": {**flavors, "sklearn": opts}}
    return data


def write(folder: Path, data: dict[str, Any]) -> None:
    import yaml

    (folder / MLMODEL).write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / REQUIREMENTS).write_text("".join(f"{r}\n" for r in data.get("requirements") or []))


def read(folder: Path) -> dict[str, Any]:
    import yaml

    path = folder / MLMODEL
    if not path.is_file():
        raise NotFoundError(f"{folder} holds no {MLMODEL} file, so it is not a model logged with lakeml.log_model(); "
                            "check the artifact path (e.g. runs:/<run_id>/model)")
    data = yaml.safe_load(path.read_text()) or {}
    if isinstance(data, dict) and "flavor" not in data:
        data = from_mlflow(data)
    if not isinstance(data, dict) or "flavor" not in data:
        raise InvalidInputError(f"{path} is not a lakeml MLmodel file (it names no flavor)")
    return data


def requirement_name(req: str) -> str:
    m = _REQ.match(req)
    if not m:
        raise InvalidInputError(f"pip requirement {req!r} is not of the form 'package' or 'package==1.2.3'")
    return m.group(1)


def check_requirements(requirements: list[str], *, what: str = "this model") -> None:
    """Raise :class:`MissingDependencyError` for missing packages; warn when a pinned version differs."""
    missing, differ = [], []
    for req in requirements:
        m = _REQ.match(req)
        if not m:
            continue
        name, op, want = m.groups()
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(req)
            continue
        if op == "==" and want and have != want:
            differ.append(f"{name} {have} (logged with {want})")
    if missing:
        quoted = " ".join(f"'{r}'" for r in missing)
        raise MissingDependencyError(f"{what} needs package(s) that are not installed: {', '.join(missing)}. "
                                     f"Install them with: pip install {quoted}")
    if differ:
        warnings.warn(f"{what} was saved with other package versions: {'; '.join(differ)}. It may load or predict "
                      "differently; install the logged versions to be sure.", stacklevel=3)


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
