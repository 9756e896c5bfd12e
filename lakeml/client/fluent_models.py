"""Fluent model verbs: ``lakeml.log_model``, ``lakeml.load_model``, ``lakeml.log_checkpoint``...

They log into the active run (see :mod:`lakeml.client.fluent`) and read from the fluent API's lake.
"""

from __future__ import annotations

from typing import Any, Mapping

from lakeml.client import fluent
from lakeml.registry.checkpoints import Checkpoint
from lakeml.registry.mlmodel import ModelInfo
from lakeml.registry.records import ModelVersion
from lakeml.registry.signature import ModelSignature, infer_signature

__all__ = ["ModelSignature", "infer_signature", "load_checkpoint", "load_model", "log_checkpoint", "log_model",
           "register_model"]


def _lake() -> Any:
    active = fluent.active_run()
    return active.lake if active is not None else fluent.get_lake()


def log_model(model: Any, artifact_path: str = "model", *, signature: Any = None, **kwargs: Any) -> ModelInfo:
    """Store ``model`` in the active run at ``artifact_path`` with its MLmodel file; see ``Lake.log_model``.

    >>> info = lakeml.log_model(clf, "model", signature=lakeml.infer_signature(X, clf.predict(X)))
    >>> info.model_uri
    'runs:/<run id>/model'
    """
    a = fluent._current()
    return a.lake.log_model(a.id, model, artifact_path, signature=signature, **kwargs)


def load_model(model_uri: str, *, trusted: bool = True, **kwargs: Any) -> Any:
    """Load ``models:/churn@champion``, ``models:/churn/3``, ``models:/churn/latest`` or ``runs:/<id>/model``.

    ``trusted=False`` refuses models whose loading runs stored code (sklearn, python: pickles); see
    ``Lake.load_model`` and docs/registry.md.
    """
    return _lake().load_model(model_uri, trusted=trusted, **kwargs)


def register_model(model_uri: str, name: str, **kwargs: Any) -> ModelVersion:
    """Register ``runs:/<run_id>/<path>`` (or a model folder URI) as the next version of ``name``."""
    from lakeml.registry.names import parse_model_uri

    parsed = parse_model_uri(model_uri)
    lake = _lake()
    if parsed.scheme == "runs":
        return lake.register_model(name, run_id=parsed.run_id, artifact_path=parsed.path, **kwargs)
    if parsed.scheme == "models":
        src = lake.get_model_version(model_uri)
        return lake.register_model(name, run_id=src.run_id, artifact_path=src.artifact_path, **kwargs) \
            if src.run_id else lake.register_model(name, source_uri=src.source_uri, **kwargs)
    return lake.register_model(name, source_uri=lake.registry.models_io.model_location(model_uri)[0], **kwargs)


def log_checkpoint(obj_or_path: Any, *, step: int, metric: float | Mapping[str, float] | None = None,
                   **kwargs: Any) -> Checkpoint:
    """Store a checkpoint of the active run and prune old ones (keep_last=2, keep_best=1, mode='min')."""
    a = fluent._current()
    return a.lake.log_checkpoint(a.id, obj_or_path, step=step, metric=metric, **kwargs)


def load_checkpoint(step: int | str = "latest", *, run_id: str | None = None, **kwargs: Any) -> Any:
    """Load a checkpoint of the active run (or of ``run_id``): a step, ``"latest"`` or ``"best"``."""
    if run_id is None:
        a = fluent._current()
        return a.lake.load_checkpoint(a.id, step, **kwargs)
    return _lake().load_checkpoint(run_id, step, **kwargs)
