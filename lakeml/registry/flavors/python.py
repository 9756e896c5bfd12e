"""Generic Python flavor: any callable (a function, or an object with ``__call__``/``predict``).

An importable module-level function is stored by reference (``module:qualname``); anything else
(a lambda, a closure, a function or class defined in a notebook or script) is pickled by value
with cloudpickle. ``code_paths`` copies local modules beside the model and puts them on
``sys.path`` when it is loaded. Declare what it needs with ``pip_requirements``.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import sys
from pathlib import Path
from typing import Any

from lakeml.errors import InvalidInputError, MissingDependencyError

PICKLE_FILE = "callable.pkl"
CODE_DIR = "code"


def matches(model: Any) -> bool:
    return callable(model) or callable(getattr(model, "predict", None))


def _reference(fn: Any) -> str | None:
    """``module:qualname`` if ``fn`` can be imported back by that name from another process."""
    if not inspect.isfunction(fn) and not inspect.isbuiltin(fn):
        return None
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or mod == "__main__" or "<" in qual:
        return None
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{mod}:{qual}" if obj is fn else None


def save(model: Any, folder: Path, code_paths: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    if not matches(model):
        raise InvalidInputError(f"the python flavor needs a callable or an object with predict(); got "
                                f"{type(model).__name__}")
    opts: dict[str, Any] = {}
    reqs: list[str] = []
    if code_paths:
        dest = folder / CODE_DIR
        dest.mkdir()
        for p in map(Path, code_paths):
            if not p.exists():
                raise InvalidInputError(f"code path {str(p)!r} does not exist; pass .py files or package folders")
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, dest / p.name)
        opts["code_dir"] = CODE_DIR
    ref = _reference(model)
    if ref is not None:
        opts.update(loader="reference", callable=ref)
        return opts, reqs
    try:
        import cloudpickle
    except ImportError as e:
        raise InvalidInputError(
            f"{getattr(model, '__qualname__', type(model).__name__)} cannot be imported by name (it is defined in "
            "__main__, a notebook, or a closure) and cloudpickle is not installed to store it by value. Move it "
            "into a module, or pip install cloudpickle") from e
    try:
        (folder / PICKLE_FILE).write_bytes(cloudpickle.dumps(model))
    except Exception as e:
        raise InvalidInputError(f"cannot pickle {type(model).__name__} for the python flavor: {e}") from e
    opts.update(loader="cloudpickle", file=PICKLE_FILE, cloudpickle_version=cloudpickle.__version__)
    return opts, [f"cloudpickle=={cloudpickle.__version__}"]


def load(folder: Path, options: dict[str, Any]) -> Any:
    if code := options.get("code_dir"):
        path = str(folder / code)
        if path not in sys.path:
            sys.path.insert(0, path)
    if options.get("loader") == "reference":
        mod, _, qual = options["callable"].partition(":")
        try:
            obj: Any = importlib.import_module(mod)
            for part in qual.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise MissingDependencyError(f"the model is the function {options['callable']}, which cannot be "
                                         f"imported here ({e}); install the package that provides {mod!r}") from e
        return obj
    try:
        import cloudpickle
    except ImportError as e:
        raise MissingDependencyError("this model was pickled with cloudpickle: pip install cloudpickle") from e
    return cloudpickle.loads((folder / options.get("file", PICKLE_FILE)).read_bytes())
