"""``LakemlRegistryStore``: MLflow's model registry API over a lake's registry (``lakeml://`` registry URIs).

Like the tracking store, each call is answered by :mod:`lakeml.mlflow_compat` (the code behind
``lakeml server``'s registry endpoints) and parsed into MLflow's entities. Every change is one of
the lake's registry verbs (a compare-and-swap commit to ``registry_events``), so a version
registered through MLflow has the same events, gates and audit log as a native one. A source
``models:/m-<id>`` (MLflow 3's logged models) or ``runs:/<run_id>/<path>`` becomes that run and
artifact path, keeping the version's lineage to its run. MLflow's deprecated stages, renames and
deletes are refused (the registry is an audit log; use aliases).
"""

from __future__ import annotations

from mlflow.store.model_registry.abstract_store import AbstractStore

from lakeml.mlflow_compat.logged_models import LoggedModels
from lakeml.mlflow_compat.registry import MlflowRegistry
from lakeml.mlflow_plugin import entities as E
from lakeml.mlflow_plugin.errors import translated, unsupported
from lakeml.mlflow_plugin.lakes import lake_for, reads
from lakeml.mlflow_plugin.tracking_store import _kv, _paged

_AUDIT = "lakeml's registry is an append-only audit log"
_STAGES = "stages are MLflow's deprecated workflow; use aliases (set_registered_model_alias)"


class LakemlRegistryStore(AbstractStore):
    """MLflow's model registry store for ``lakeml:///path/to/warehouse`` and ``lakeml://<catalog>`` URIs."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None):
        super().__init__(store_uri, tracking_uri)
        self.store_uri = store_uri
        self.lake = lake_for(store_uri)
        self.svc = MlflowRegistry(self.lake, logged_models=LoggedModels(self.lake))

    # -- registered models ----------------------------------------------------------------------------
    @translated
    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        resp = self.svc.create_registered_model({"name": name, "tags": _kv(tags), "description": description})
        return E.registered_model(resp["registered_model"])

    @translated
    def update_registered_model(self, name, description, deployment_job_id=None):
        resp = self.svc.update_registered_model({"name": name, "description": description})
        return E.registered_model(resp["registered_model"])

    def rename_registered_model(self, name, new_name):
        raise unsupported("rename_registered_model", _AUDIT)

    def delete_registered_model(self, name):
        raise unsupported("delete_registered_model", _AUDIT)

    @translated
    @reads
    def search_registered_models(self, filter_string=None, max_results=None, order_by=None, page_token=None):
        resp = self.svc.search_registered_models({"filter": filter_string, "max_results": max_results,
                                                  "order_by": list(order_by or []), "page_token": page_token})
        return _paged([E.registered_model(d) for d in resp["registered_models"]], resp.get("next_page_token"))

    @translated
    @reads
    def get_registered_model(self, name):
        return E.registered_model(self.svc.get_registered_model({"name": name})["registered_model"])

    @translated
    @reads
    def get_latest_versions(self, name, stages=None):
        resp = self.svc.get_latest_versions({"name": name, "stages": list(stages or [])})
        return [E.model_version(d) for d in resp["model_versions"]]

    @translated
    def set_registered_model_tag(self, name, tag):
        self.svc.set_registered_model_tag({"name": name, "key": tag.key, "value": tag.value})

    @translated
    def delete_registered_model_tag(self, name, key):
        self.svc.delete_registered_model_tag({"name": name, "key": key})

    # -- versions -------------------------------------------------------------------------------------
    @translated
    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None, description=None,
                             local_model_path=None, model_id=None):
        if source and source.startswith("models:/") and not source[len("models:/"):].startswith("m-"):
            mv = self.lake.get_model_version(source)  # models:/name/3 or models:/name@alias: that folder
            source, run_id = mv.source_uri, run_id or mv.run_id
        resp = self.svc.create_model_version({"name": name, "source": source, "run_id": run_id, "tags": _kv(tags),
                                              "description": description, "model_id": model_id})
        return E.model_version(resp["model_version"])

    @translated
    def update_model_version(self, name, version, description):
        resp = self.svc.update_model_version({"name": name, "version": version, "description": description})
        return E.model_version(resp["model_version"])

    def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
        raise unsupported("transition_model_version_stage", _STAGES)

    def delete_model_version(self, name, version):
        raise unsupported("delete_model_version", _AUDIT)

    @translated
    @reads
    def get_model_version(self, name, version):
        return E.model_version(self.svc.get_model_version({"name": name, "version": version})["model_version"])

    @translated
    @reads
    def get_model_version_download_uri(self, name, version):
        return self.svc.get_model_version_download_uri({"name": name, "version": version})["artifact_uri"]

    @translated
    @reads
    def search_model_versions(self, filter_string=None, max_results=None, order_by=None, page_token=None):
        resp = self.svc.search_model_versions({"filter": filter_string, "max_results": max_results,
                                               "order_by": list(order_by or []), "page_token": page_token})
        return _paged([E.model_version(d) for d in resp["model_versions"]], resp.get("next_page_token"))

    @translated
    def set_model_version_tag(self, name, version, tag):
        self.svc.set_model_version_tag({"name": name, "version": version, "key": tag.key, "value": tag.value})

    @translated
    def delete_model_version_tag(self, name, version, key):
        self.svc.delete_model_version_tag({"name": name, "version": version, "key": key})

    # -- aliases --------------------------------------------------------------------------------------
    @translated
    def set_registered_model_alias(self, name, alias, version):
        self.svc.set_alias({"name": name, "alias": alias, "version": version})

    @translated
    def delete_registered_model_alias(self, name, alias):
        self.svc.delete_alias({"name": name, "alias": alias})

    @translated
    @reads
    def get_model_version_by_alias(self, name, alias):
        return E.model_version(self.svc.get_by_alias({"name": name, "alias": alias})["model_version"])
