"""Flavors: how a model object is saved into a folder and loaded back.

``sklearn`` (joblib), ``python`` (any callable, with declared pip requirements) and ``onnx``
(needs onnxruntime). Each flavor module has ``matches(model)``, ``save(model, folder, **opts)``
returning ``(options, requirements)``, and ``load(folder, options)``.
"""

from __future__ import annotations

import importlib
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lakeml.errors import InvalidInputError
from lakeml.registry import mlmodel
from lakeml.registry.signature import coerce

FLAVORS = ("sklearn", "onnx", "python")
#: Flavors whose loading runs no code from the model folder (ONNX is a graph of operators, not a pickle).
SAFE_FLAVORS = ("onnx",)


def _module(flavor: str) -> Any:
    if flavor not in FLAVORS:
        raise InvalidInputError(f"unknown model flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
    return importlib.import_module(f"lakeml.registry.flavors.{flavor}")


def detect(model: Any) -> str:
    """The flavor that fits ``model`` best."""
    for name in FLAVORS:
        if _module(name).matches(model):
            return name
    raise InvalidInputError(f"cannot log a {type(model).__name__}: it is not a scikit-learn model, an ONNX model "
                            "or a callable. Wrap it in a function or a class with __call__/predict, or pass flavor=")


def save(model: Any, folder: Path, *, artifact_path: str, run_id: str | None, flavor: str | None = None,
         signature: Any = None, input_example: Any = None, pip_requirements: list[str] | None = None,
         extra_pip_requirements: list[str] | None = None, code_paths: list[str] | None = None,
         metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model`` and its MLmodel file into ``folder``; returns the MLmodel content."""
    import lakeml

    flavor = flavor or detect(model)
    mod = _module(flavor)
    opts: dict[str, Any] = {}
    if flavor == "python":
        opts["code_paths"] = code_paths
    elif code_paths:
        raise InvalidInputError("code_paths is only for the python flavor")
    if flavor == "onnx":
        opts["input_example"] = input_example
    sig = coerce(signature)
    if sig is None and input_example is not None:
        from lakeml.registry.signature import infer_signature

        sig = infer_signature(input_example).to_dict()
    options, reqs = mod.save(model, folder, **opts)
    if pip_requirements is not None:
        reqs = [str(r) for r in pip_requirements]
    reqs = list(dict.fromkeys([*reqs, *(str(r) for r in extra_pip_requirements or ())]))
    for r in reqs:
        mlmodel.requirement_name(r)
    data = {
        "artifact_path": artifact_path, "flavor": flavor, "flavors": {flavor: options}, "signature": sig,
        "requirements": reqs, "run_id": run_id, "model_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc).isoformat(), "python_version": mlmodel.python_version(),
        "lakeml_version": lakeml.__version__, "metadata": dict(metadata or {}),
    }
    mlmodel.write(folder, data)
    return data


def check_safe(data: dict[str, Any], where: str) -> None:
    """Refuse a model whose loading would run code stored with it (a pickle or shipped modules)."""
    flavor = data.get("flavor")
    if flavor not in SAFE_FLAVORS:
        how = {"sklearn": "a joblib pickle", "python": "a cloudpickle or code shipped with the model"}.get(
            str(flavor), "not known to be safe")
        raise InvalidInputError(
            f"refusing to load {where} with trusted=False: its flavor {flavor!r} is {how}, and loading it runs "
            f"code chosen by whoever saved it. Load it with trusted=True only if you trust that lake, or log the "
            f"model as ONNX (flavor='onnx'), which loads without running stored code")


def load(folder: Path, data: dict[str, Any] | None = None) -> Any:
    """Load the model stored in ``folder`` (after checking its pip requirements)."""
    data = data or mlmodel.read(folder)
    flavor = data["flavor"]
    mod = _module(flavor)
    mlmodel.check_requirements(list(data.get("requirements") or []), what=f"the {flavor} model in {folder}")
    return mod.load(folder, dict((data.get("flavors") or {}).get(flavor) or {}))
