"""MLflow 3's logged-model endpoints (what ``mlflow.<flavor>.log_model`` calls) over
:class:`lakeml.mlflow_compat.logged_models.LoggedModels`, with artifact URIs behind the proxy.

A logged model of a run is stored among that run's artifacts (``<run>/<name>``), so MLflow's
``runs:/<run id>/model`` and lakeml's ``lake.load_model("runs:/<run id>/model")`` name the same folder.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from lakeml.errors import InvalidInputError
from lakeml.mlflow_compat import convert as C
from lakeml.mlflow_compat import search as S
from lakeml.mlflow_compat import tags as T
from lakeml.mlflow_compat.logged_models import LoggedModels, logged_model_dict
from lakeml.mlflow_compat.service import _kv_items, _list_field, _str_field


class MlflowModels:
    """Logged models, run outputs and run artifact listings for MLflow clients."""

    def __init__(self, lake: Any, proxy: Any, tracking: Any):
        self.lake = lake
        self.proxy = proxy
        self.tracking = tracking
        self.store = LoggedModels(lake)

    def _dict(self, m: Any) -> dict[str, Any]:
        d = logged_model_dict(m)
        d["info"]["artifact_uri"] = self.proxy.to_proxy_uri(m.artifact_location)
        return d

    def create(self, req: Mapping[str, Any]) -> dict[str, Any]:
        exp = self.tracking.experiment(req.get("experiment_id") or "0")
        run_id = req.get("source_run_id") or None
        if run_id is not None:
            self.lake.tracking.run_state(run_id)
        m = self.store.create(exp.experiment_id, name=req.get("name") or None, run_id=run_id,
                              tags=dict(_kv_items(req, "tags")) or None, params=dict(_kv_items(req, "params")) or None,
                              model_type=req.get("model_type") or None)
        return {"model": self._dict(m)}

    def get(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"model": self._dict(self.store.get(_str_field(req, "model_id")))}

    def finalize(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"model": self._dict(self.store.finalize(_str_field(req, "model_id"), _str_field(req, "status")))}

    def delete(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.store.delete(_str_field(req, "model_id"))
        return {}

    def set_tags(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.store.set_tags(_str_field(req, "model_id"), dict(_kv_items(req, "tags")))
        return {}

    def delete_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.store.delete_tag(_str_field(req, "model_id"), _str_field(req, "tag_key"))
        return {}

    def log_params(self, req: Mapping[str, Any]) -> dict[str, Any]:
        raise InvalidInputError("logging params to a logged model after it was created is not supported by lakeml "
                                "server; pass them (at most 100) when the model is created")

    def search(self, req: Mapping[str, Any]) -> dict[str, Any]:
        ids = [self.tracking.experiment_id(e) for e in _list_field(req, "experiment_ids")] or None
        max_results = S.max_results_value(req.get("max_results"), default=100)
        offset = S.decode_page_token(req.get("page_token"))
        run_id, name = None, None
        flt = (req.get("filter") or "").strip()
        if flt:
            import re

            for clause in re.split(r"\s+AND\s+", flt, flags=re.I):
                m = re.fullmatch(r"\s*(?:attributes\.)?(source_run_id|name)\s*=\s*'([^']*)'\s*", clause)
                if not m:
                    raise InvalidInputError(f"logged model filter clause {clause!r} is not supported: use "
                                            "source_run_id = '<run id>' or name = '<name>', joined by AND")
                if m.group(1) == "source_run_id":
                    run_id = m.group(2)
                else:
                    name = m.group(2)
        found = self.store.search(ids, run_id=run_id)
        if name is not None:
            found = [m for m in found if m.name == name]
        rows, token = S.page(found[offset:offset + max_results + 1], offset, max_results)
        out: dict[str, Any] = {"models": [self._dict(m) for m in rows]}
        if token:
            out["next_page_token"] = token
        return out

    def log_outputs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """Link logged models to the run that made them: the link is the model's ``source_run_id``."""
        run_id = self.tracking._run_id(req)
        self.lake.tracking.run_state(run_id)
        for i, item in enumerate(_list_field(req, "models")):
            if not isinstance(item, Mapping) or not item.get("model_id"):
                raise InvalidInputError(f"models[{i}] must be an object with model_id and step")
        return {}

    def log_model_history(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """MLflow's ``runs/log-model``: append the model's metadata to the run's ``mlflow.log-model.history`` tag."""
        run_id = self.tracking._run_id(req)
        raw = _str_field(req, "model_json")
        try:
            model = json.loads(raw)
        except ValueError:
            raise InvalidInputError("model_json must be a JSON object (the MLmodel's dict)") from None
        run = self.lake.tracking.get_run(run_id)
        try:
            history = json.loads(run.tags.get(T.LOGGED_MODELS) or "[]")
        except ValueError:
            history = []
        history.append(model)
        self.tracking.set_tag({"run_id": run_id, "key": T.LOGGED_MODELS, "value": json.dumps(history)})
        return {}

    def list_run_artifacts(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self.tracking._run_id(req)
        st = self.lake.tracking.run_state(run_id)
        path = req.get("path") or ""
        base = f"{st.experiment_id}/{run_id}/artifacts"
        files = self.proxy.list(f"{base}/{path}" if path else base)
        prefix = f"{path.strip('/')}/" if path else ""
        out: dict[str, Any] = {"root_uri": C.proxy_run_artifact_uri(st.experiment_id, run_id),
                               "files": [{**f, "path": prefix + f["path"]} for f in files]}
        return out
