"""``LakemlTrackingStore``: MLflow's tracking store API over a lake (``lakeml://`` tracking URIs).

It works like MLflow's own REST store with the network taken out: each call becomes the request
dict of MLflow's REST API, which :mod:`lakeml.mlflow_compat` (the same code as ``lakeml server``'s
MLflow endpoints) answers with MLflow's response JSON, parsed here into MLflow's entities. So
writes are ``Lake``'s own verbs (a run logged through MLflow is the same rows as a native run),
and the plugin and the server cannot drift apart.

What differs from the server: a run's ``artifact_uri`` is where lakeml keeps its artifacts
(``lake.artifact_uri(run_id)``, a file:// or s3:// URI), so MLflow's own artifact repositories
write there directly; when the run ends, the files they wrote are recorded in the ``artifacts``
table (path, size, sha256) as ``lake.log_artifact`` would have. Logging only buffers rows
(lakeml's committer commits them in the background and at exit), as native lakeml logging does.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from mlflow.store.tracking.abstract_store import AbstractStore

from lakeml.ids import DEFAULT_EXPERIMENT
from lakeml.mlflow_compat.models import MlflowModels
from lakeml.mlflow_compat.service import MLFLOW_DEFAULT_EXPERIMENT_ID, MlflowTracking
from lakeml.mlflow_plugin import entities as E
from lakeml.mlflow_plugin.errors import translated, unsupported
from lakeml.mlflow_plugin.lakes import lake_for, reads

_TERMINAL = ("FINISHED", "FAILED", "KILLED")
_CHUNK = 8 * 1024 * 1024
_APPEND_ONLY = "lakeml keeps runs and experiments as append-only history"


def _kv(items: Any) -> list[dict[str, Any]]:
    return [{"key": i.key, "value": i.value} for i in items or []]


def _buffer_only(add: Callable[[], Any], key: str | None = None) -> Any:
    """Logging in-process buffers rows, as lakeml's own verbs do (no spool hand-off per call)."""
    return add()


class _Direct:
    """Artifact URIs as they are: the plugin's clients read the lake's storage themselves (no proxy)."""

    @staticmethod
    def to_proxy_uri(uri: str) -> str:
        return uri


def _paged(items: list, token: str | None) -> Any:
    from mlflow.store.entities import PagedList

    return PagedList(items, token)


class LakemlTrackingStore(AbstractStore):
    """MLflow's tracking store for ``lakeml:///path/to/warehouse`` and ``lakeml://<catalog>`` URIs."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None):
        super().__init__()
        self.store_uri = store_uri
        self.lake = lake_for(store_uri)
        root = self.lake.artifacts.root
        self.svc = MlflowTracking(self.lake, artifact_location=lambda eid: f"{root}/{eid}",
                                  run_artifact_uri=self.lake.artifacts.run_uri, durable=_buffer_only)
        self.models = MlflowModels(self.lake, _Direct(), self.svc)

    # -- experiments --------------------------------------------------------------------------------
    @translated
    @reads
    def search_experiments(self, view_type=None, max_results=None, filter_string=None, order_by=None,
                           page_token=None):
        resp = self.svc.search_experiments({"view_type": getattr(view_type, "value", view_type),
                                            "max_results": max_results, "filter": filter_string,
                                            "order_by": list(order_by or []), "page_token": page_token})
        return _paged([E.experiment(d) for d in resp["experiments"]], resp.get("next_page_token"))

    @translated
    def create_experiment(self, name, artifact_location=None, tags=None):
        return self.svc.create_experiment({"name": name, "tags": _kv(tags)})["experiment_id"]

    @translated
    @reads
    def get_experiment(self, experiment_id):
        return E.experiment(self.svc.get_experiment({"experiment_id": experiment_id})["experiment"])

    @translated
    @reads
    def get_experiment_by_name(self, experiment_name):
        from lakeml.errors import NotFoundError

        try:
            return E.experiment(self.svc.get_experiment_by_name({"experiment_name": experiment_name})["experiment"])
        except NotFoundError:
            if experiment_name == DEFAULT_EXPERIMENT:  # MLflow's default experiment always exists
                return self.get_experiment(MLFLOW_DEFAULT_EXPERIMENT_ID)
            return None

    def delete_experiment(self, experiment_id):
        raise unsupported("delete_experiment", _APPEND_ONLY)

    def restore_experiment(self, experiment_id):
        raise unsupported("restore_experiment", _APPEND_ONLY)

    def rename_experiment(self, experiment_id, new_name):
        raise unsupported("rename_experiment", "lakeml derives experiment ids from names")

    def set_experiment_tag(self, experiment_id, tag):
        raise unsupported("set_experiment_tag", "experiment tags are set when the experiment is created")

    # -- runs ---------------------------------------------------------------------------------------
    @translated
    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        resp = self.svc.create_run({"experiment_id": experiment_id, "user_id": user_id, "start_time": start_time,
                                    "tags": _kv(tags), "run_name": run_name})
        return E.run(resp["run"])

    @translated
    @reads
    def get_run(self, run_id):
        return E.run(self.svc.get_run({"run_id": run_id})["run"])

    @translated
    def update_run_info(self, run_id, run_status, end_time, run_name):
        from mlflow.entities import RunStatus

        status = RunStatus.to_string(run_status) if isinstance(run_status, int) else str(run_status)
        resp = self.svc.update_run({"run_id": run_id, "status": status, "end_time": end_time, "run_name": run_name})
        if status in _TERMINAL:
            self._record_artifacts(run_id)
        return E.run_info(resp["run_info"])

    def delete_run(self, run_id):
        raise unsupported("delete_run", _APPEND_ONLY)

    def restore_run(self, run_id):
        raise unsupported("restore_run", _APPEND_ONLY)

    def _record_artifacts(self, run_id: str) -> None:
        """Record the run's files that MLflow's artifact repositories wrote (those not in ``artifacts`` yet)."""
        from lakeml.storage.objectstore import fs_path

        root = self.lake.artifact_uri(run_id)
        files = list(self.lake.artifacts.walk(root))
        if not files:
            return
        self.lake.flush()  # (see lakes.reads)
        known = set(self.lake.sql("SELECT DISTINCT path FROM lakeml.artifacts WHERE run_id = $1",
                                  params=[run_id]).get_column("path").to_list())
        fs = self.lake.artifacts.fs
        rows = []
        for rel in files:
            if rel in known:
                continue
            uri = f"{root}/{rel}"
            digest, size = hashlib.sha256(), 0
            with fs.open_input_stream(fs_path(uri)) as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            rows.append((run_id, rel, uri, size, digest.hexdigest(), self.lake.clock()))
        if rows:
            self.lake.committer.buffer("artifacts").extend(rows)

    # -- logging ------------------------------------------------------------------------------------
    @translated
    def log_batch(self, run_id, metrics, params, tags):
        self.svc.log_batch({"run_id": run_id, "params": _kv(params), "tags": _kv(tags),
                            "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                                        for m in metrics]})

    @translated
    @reads
    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        resp = self.svc.get_metric_history({"run_id": run_id, "metric_key": metric_key, "max_results": max_results,
                                            "page_token": page_token})
        return _paged([E.metric({**d, "run_id": run_id}) for d in resp["metrics"]], resp.get("next_page_token"))

    @translated
    @reads
    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        resp = self.svc.search_runs({"experiment_ids": list(experiment_ids or []), "filter": filter_string,
                                     "run_view_type": getattr(run_view_type, "value", run_view_type),
                                     "max_results": max_results, "order_by": list(order_by or []),
                                     "page_token": page_token})
        return [E.run(d) for d in resp.get("runs", [])], resp.get("next_page_token")

    @translated
    def log_inputs(self, run_id, datasets=None, models=None):
        if datasets:
            self.svc.log_inputs({"run_id": run_id, "datasets": [E.as_dict(d) for d in datasets]})

    @translated
    def log_outputs(self, run_id, models):
        self.models.log_outputs({"run_id": run_id, "models": [{"model_id": m.model_id, "step": m.step}
                                                              for m in models]})

    @translated
    def record_logged_model(self, run_id, mlflow_model):
        self.models.log_model_history({"run_id": run_id, "model_json": mlflow_model.to_json()})

    def link_traces_to_run(self, trace_ids, run_id):
        raise unsupported("link_traces_to_run", "lakeml does not store traces")

    # -- logged models (MLflow 3) ---------------------------------------------------------------------
    @translated
    def create_logged_model(self, experiment_id, name=None, source_run_id=None, tags=None, params=None,
                            model_type=None):
        resp = self.models.create({"experiment_id": experiment_id, "name": name, "source_run_id": source_run_id,
                                   "tags": _kv(tags), "params": _kv(params), "model_type": model_type})
        return E.logged_model(resp["model"])

    @translated
    @reads
    def get_logged_model(self, model_id, allow_deleted=False):
        if allow_deleted:
            from lakeml.mlflow_compat.logged_models import logged_model_dict

            return E.logged_model(logged_model_dict(self.models.store.get(model_id, allow_deleted=True)))
        return E.logged_model(self.models.get({"model_id": model_id})["model"])

    @translated
    def finalize_logged_model(self, model_id, status):
        status = str(getattr(status, "value", status))
        return E.logged_model(self.models.finalize({"model_id": model_id, "status": status})["model"])

    @translated
    def set_logged_model_tags(self, model_id, tags):
        self.models.set_tags({"model_id": model_id, "tags": _kv(tags)})

    @translated
    def delete_logged_model_tag(self, model_id, key):
        self.models.delete_tag({"model_id": model_id, "tag_key": key})

    @translated
    def delete_logged_model(self, model_id):
        self.models.delete({"model_id": model_id})

    @translated
    @reads
    def search_logged_models(self, experiment_ids, filter_string=None, datasets=None, max_results=None,
                             order_by=None, page_token=None):
        if datasets or order_by:
            raise unsupported("search_logged_models with datasets or order_by",
                              "query lakeml.logged_models with SQL (lake.sql) instead")
        resp = self.models.search({"experiment_ids": list(experiment_ids or []), "filter": filter_string,
                                   "max_results": max_results, "page_token": page_token})
        return _paged([E.logged_model(d) for d in resp["models"]], resp.get("next_page_token"))
