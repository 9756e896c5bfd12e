"""scikit-learn flavor: the estimator (or pipeline) pickled with joblib."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lakeml.errors import MissingDependencyError

MODEL_FILE = "model.joblib"


def matches(model: Any) -> bool:
    return "sklearn" in sys.modules and any(c.__module__.startswith("sklearn.") for c in type(model).__mro__)


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError as e:
        raise MissingDependencyError("the sklearn flavor needs scikit-learn: pip install 'lakeml[sklearn]' "
                                     "(or pip install scikit-learn)") from e
    return sklearn


def save(model: Any, folder: Path) -> tuple[dict[str, Any], list[str]]:
    import joblib

    sk = _sklearn()
    joblib.dump(model, folder / MODEL_FILE)
    return ({"model_file": MODEL_FILE, "serialization": "joblib", "sklearn_version": sk.__version__,
             "class": f"{type(model).__module__}.{type(model).__qualname__}"},
            [f"scikit-learn=={sk.__version__}"])


def load(folder: Path, options: dict[str, Any]) -> Any:
    import joblib

    _sklearn()
    return joblib.load(folder / options.get("model_file", MODEL_FILE))
