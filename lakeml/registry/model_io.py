"""``lake.registry.models_io``: log, load and inspect model folders; register the best run's model.

Loading runs code: the ``sklearn`` flavor is a joblib pickle and the ``python`` flavor a
cloudpickle (or code shipped with the model). Load those only from a lake you trust; with
``trusted=False`` they are refused and only ``onnx`` models (data, not code) load.
See docs/registry.md, "Trust".
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lakeml import validation as v
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError
from lakeml.registry import names
from lakeml.registry.mlmodel import MLMODEL, ModelInfo
from lakeml.registry.records import ModelVersion

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.client import QueryClient
    from lakeml.registry.client import RegistryClient
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.config import LakeConfig
    from lakeml.tracking.client import TrackingClient


class ModelIO:
    """Saving models with an MLmodel file under a run, and loading them back from any model URI."""

    def __init__(self, registry: "RegistryClient", tracking: "TrackingClient", query: "QueryClient",
                 artifacts: "ArtifactStore", config: "LakeConfig"):
        self.registry = registry
        self.tracking = tracking
        self.query = query
        self.artifacts = artifacts
        self.config = config

    def log_model(self, run_id: str, model: Any, artifact_path: str = "model", *, flavor: str | None = None,
                  signature: Any = None, input_example: Any = None, pip_requirements: list[str] | None = None,
                  extra_pip_requirements: list[str] | None = None, code_paths: list[str] | None = None,
                  metadata: Mapping[str, Any] | None = None, registered_model_name: str | None = None) -> ModelInfo:
        """Save ``model`` under the run's artifacts with an MLmodel file (flavor, signature, requirements).

        ``flavor``: sklearn, python or onnx (detected when omitted). ``signature``: a ModelSignature, a dict
        ``{"inputs": ..., "outputs": ...}`` or ``(X_sample, y_sample)``. With ``registered_model_name`` the
        model is also registered as the next version of that model.
        """
        from lakeml.registry import flavors
        from lakeml.storage.artifacts import clean_artifact_path

        path = clean_artifact_path(artifact_path)
        if not path:
            raise InvalidInputError("artifact_path must name a folder inside the run, e.g. 'model'")
        if registered_model_name is not None:
            names.model_name(registered_model_name)
        run_uri = self.tracking.artifact_uri(run_id)
        if any(True for _ in self.artifacts.walk(run_uri, path)):
            raise ConflictError(f"run {run_id} already has artifacts at {path!r}; log the model under another "
                                "artifact_path (logged models are never overwritten)")
        tmp = Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            data = flavors.save(model, tmp, artifact_path=path, run_id=run_id, flavor=flavor, signature=signature,
                                input_example=input_example, pip_requirements=pip_requirements,
                                extra_pip_requirements=extra_pip_requirements, code_paths=code_paths,
                                metadata=dict(metadata or {}))
            self.tracking.log_artifacts(run_id, tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        info = ModelInfo.from_mlmodel(data, f"runs:/{run_id}/{path}")
        if registered_model_name is not None:
            mv = self.registry.register_model(registered_model_name, run_id=run_id, artifact_path=path)
            info = dataclasses.replace(info, registered_version=mv.version)
        return info

    def model_location(self, uri: str) -> tuple[str, str]:
        """``(storage URI of the model folder, canonical model URI)`` for any accepted model URI."""
        parsed = names.parse_model_uri(uri)
        if parsed.scheme == "models":
            mv = self.registry.state().resolve(parsed.ref)
            return mv.source_uri, mv.model_uri
        if parsed.scheme == "runs":
            from lakeml.storage.artifacts import clean_artifact_path

            base = self.tracking.artifact_uri(parsed.run_id)
            path = clean_artifact_path(parsed.path)
            return (f"{base}/{path}" if path else base), uri
        loc = parsed.location
        if "://" not in loc:
            loc = Path(loc).expanduser().resolve().as_uri()
        return loc, loc

    def _fetch_model(self, uri: str, dst: Path) -> tuple[Path, dict[str, Any], str]:
        from lakeml.registry import mlmodel
        from lakeml.storage.artifacts import ArtifactStore

        loc, canonical = self.model_location(uri)
        if loc.startswith("file://") and Path(loc[7:]).is_dir():
            folder = Path(loc[7:])
        else:
            try:
                folder = ArtifactStore(loc, self.config.properties).download(loc, "", dst)
            except NotFoundError:
                raise NotFoundError(f"no model is stored at {uri} ({loc}); log it with lakeml.log_model()") from None
        return folder, mlmodel.read(folder), canonical

    def get_model_info(self, uri: str) -> ModelInfo:
        """The MLmodel metadata of a model URI (flavor, signature, requirements) without loading it."""
        tmp = Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            _, data, canonical = self._fetch_model(uri, tmp)
            return ModelInfo.from_mlmodel(data, canonical)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load_model(self, uri: str, *, dst_path: str | os.PathLike | None = None, trusted: bool = True) -> Any:
        """Load a model from ``models:/name/3``, ``models:/name@alias``, ``models:/name/latest``,
        ``runs:/<run_id>/model``, or a model folder (path, file:// or s3:// URI).

        Loading a ``sklearn`` or ``python`` model unpickles it, which runs code chosen by whoever
        saved it. With ``trusted=False`` such models are refused (:class:`~lakeml.errors.InvalidInputError`)
        and only ``onnx`` models load: use that for models from a lake you do not fully trust.
        """
        from lakeml.registry import flavors

        keep = dst_path is not None
        tmp = Path(dst_path) if keep else Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            folder, data, _ = self._fetch_model(uri, tmp)
            if not trusted:
                flavors.check_safe(data, uri)
            if (data.get("flavors") or {}).get(data["flavor"], {}).get("code_dir"):
                keep = True  # its code must stay importable
            return flavors.load(folder, data)
        finally:
            if not keep:
                shutil.rmtree(tmp, ignore_errors=True)

    def register_best_model(self, name: str, *, experiment: str | None = None, metric: str, mode: str = "max",
                            artifact_path: str = "model", alias: str | None = "champion",
                            filter_string: str | None = None) -> ModelVersion:
        """Register the model of the best run (by ``metric``, ``mode`` max or min) and give it ``alias``.

        Runs without a model at ``artifact_path`` are skipped; if the best run's model is already a
        version of ``name``, that version is reused. Gates on ``alias`` apply.
        """
        if mode not in ("max", "min"):
            raise InvalidInputError(f"mode must be 'max' or 'min', got {mode!r}")
        v.validate_key(metric, "metric")
        runs = self.query.search_runs(experiment, filter_string=filter_string, max_results=100_000)
        col = f"metrics.{metric}"
        if runs.height == 0 or col not in runs.columns:
            where = f"experiment {experiment!r}" if experiment else "the lake"
            raise NotFoundError(f"no run in {where} logged metric {metric!r}; nothing to register")
        cands = [r for r in runs.select("run_id", col).iter_rows() if r[1] is not None and not math.isnan(r[1])]
        cands.sort(key=lambda r: r[1], reverse=(mode == "max"))
        for run_id, _ in cands:
            run_uri = self.tracking.artifact_uri(run_id)
            if f"{artifact_path}/{MLMODEL}" not in set(self.artifacts.walk(run_uri, artifact_path)):
                continue
            existing = [mv for mv in self.registry.registered_versions(name) if mv.run_id == run_id
                        and mv.artifact_path == artifact_path]
            mv = existing[0] if existing else self.registry.register_model(name, run_id=run_id,
                                                                            artifact_path=artifact_path)
            if alias:
                self.registry.set_alias(name, alias, mv.version)
                mv = self.registry.get_model_version(name, mv.version)
            return mv
        raise NotFoundError(f"no run with metric {metric!r} stored a model at {artifact_path!r}; log one with "
                            "lakeml.log_model(model, artifact_path)")
