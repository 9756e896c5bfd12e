"""MLflow's model registry verbs over lakeml's registry: request dicts in, MLflow response dicts out.

Registered models, versions, tags and aliases are lakeml's (``lake.registry``): a version registered
through MLflow is a lakeml version, with its gates, its audit events and its ``models:/name@alias``
URI. A version's ``source`` is shown to MLflow clients as the ``mlflow-artifacts:/`` URI of the same
folder (``to_proxy``), which they download through the server's artifact proxy. MLflow's stages are
not supported (lakeml uses aliases): ``current_stage`` is always ``None``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.mlflow_compat import convert as C
from lakeml.mlflow_compat import search as S
from lakeml.mlflow_compat.service import _int_field, _kv_items, _str_field

_RUN_ID_LEN = 32


class MlflowRegistry:
    """Registered models and versions in MLflow's shapes. ``to_proxy(uri)`` turns a lakeml storage
    URI into what clients are told (default: unchanged); ``logged_models`` resolves ``models:/<model id>``."""

    def __init__(self, lake: Any, *, to_proxy: Callable[[str], str] = lambda u: u,
                 from_proxy: Callable[[str], tuple[str | None, str]] | None = None, logged_models: Any = None):
        self.lake = lake
        self.to_proxy = to_proxy
        self.from_proxy = from_proxy
        self.logged_models = logged_models

    @property
    def reg(self) -> Any:
        return self.lake.registry

    # -- dicts ------------------------------------------------------------------------------------
    def _mv(self, mv: Any) -> dict[str, Any]:
        return C.model_version_dict(mv, source=self.to_proxy(mv.source_uri))

    def _model(self, m: Any) -> dict[str, Any]:
        latest = []
        if m.latest_version is not None:
            try:
                latest = [self.reg.get_model_version(m.name, m.latest_version)]
            except NotFoundError:
                latest = []
        return C.registered_model_dict(m, latest_versions=latest, version_source=lambda mv: self.to_proxy(mv.source_uri))

    # -- registered models --------------------------------------------------------------------------
    def create_registered_model(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from lakeml.errors import ConflictError

        name = _str_field(req, "name")
        if name in self.reg.state().models:
            raise ConflictError(f"registered model {name!r} already exists; create a new version of it instead")
        m = self.reg.create_model(name, description=req.get("description") or None,
                                  tags=dict(_kv_items(req, "tags")) or None)
        return {"registered_model": self._model(m)}

    def get_registered_model(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"registered_model": self._model(self.reg.get_model(_str_field(req, "name")))}

    def update_registered_model(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "name")
        m = self.reg.update_model(name, description=req.get("description"))
        return {"registered_model": self._model(m)}

    def set_registered_model_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.update_model(_str_field(req, "name"), tags={_str_field(req, "key"): req.get("value", "")})
        return {}

    def delete_registered_model_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.update_model(_str_field(req, "name"), delete_tags=[_str_field(req, "key")])
        return {}

    def search_registered_models(self, req: Mapping[str, Any]) -> dict[str, Any]:
        max_results = S.max_results_value(req.get("max_results"), default=100)
        offset = S.decode_page_token(req.get("page_token"))
        pred = _name_filter(req.get("filter"), ("name",))
        models = [m for m in self.reg.list_models() if pred({"name": m.name, **{f"tags.{k}": x for k, x in
                                                                              m.tags.items()}})]
        rows, token = S.page(models[offset:offset + max_results + 1], offset, max_results)
        out: dict[str, Any] = {"registered_models": [self._model(m) for m in rows]}
        if token:
            out["next_page_token"] = token
        return out

    def get_latest_versions(self, req: Mapping[str, Any]) -> dict[str, Any]:
        m = self.reg.get_model(_str_field(req, "name"))
        stages = req.get("stages") or []
        if isinstance(stages, str):
            stages = [stages]
        if m.latest_version is None or (stages and not any(str(s).lower() == "none" for s in stages)):
            return {"model_versions": []}
        return {"model_versions": [self._mv(self.reg.get_model_version(m.name, m.latest_version))]}

    # -- versions -----------------------------------------------------------------------------------
    def _source(self, source: str, run_id: str | None, model_id: str | None) -> dict[str, Any]:
        """register_model arguments (run_id + artifact_path, or source_uri) for an MLflow ``source``."""
        if source.startswith("models:/") and model_id is None:
            rest = source[len("models:/"):].strip("/")
            if rest.startswith("m-") and "/" not in rest:
                model_id = rest
        if model_id and self.logged_models is not None and (source.startswith("models:/") or not source):
            lm = self.logged_models.get(model_id)
            source = lm.artifact_location
        if source.startswith("runs:/"):
            rest = source[len("runs:/"):].strip("/")
            rid, _, path = rest.partition("/")
            return {"run_id": rid, "artifact_path": path}
        if self.from_proxy is not None and source.startswith(C.PROXY_SCHEME):
            rid, uri = self.from_proxy(source)
            source = uri
        root = None
        if run_id:
            try:
                root = self.lake.tracking.artifact_uri(run_id)
            except NotFoundError:
                root = None
        if root and (source == root or source.startswith(root + "/")):
            return {"run_id": run_id, "artifact_path": source[len(root):].strip("/")}
        # a folder of some run of this lake without the run_id: find the run from the path
        base = self.lake.artifacts.root.rstrip("/")
        if source.startswith(base + "/"):
            parts = source[len(base) + 1:].split("/")
            if len(parts) >= 2 and len(parts[1]) == _RUN_ID_LEN:
                return {"run_id": parts[1], "artifact_path": "/".join(parts[2:])}
        return {"source_uri": source}

    def create_model_version(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "name")
        source = _str_field(req, "source", required=False) or ""
        run_id = req.get("run_id") or None
        model_id = req.get("model_id") or None
        if not source and not model_id:
            raise InvalidInputError("missing value for required parameter 'source'")
        args = self._source(source, run_id, model_id)
        if "source_uri" in args and run_id:
            args["run_id"] = None
        mv = self.reg.register_model(name, description=req.get("description") or None,
                                     tags=dict(_kv_items(req, "tags")) or None, **args)
        return {"model_version": self._mv(mv)}

    def get_model_version(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "name")
        version = _int_field(req, "version", required=True)
        return {"model_version": self._mv(self.reg.get_model_version(name, version))}

    def update_model_version(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "name")
        version = _int_field(req, "version", required=True)
        mv = self.reg.update_model_version(name, version, description=req.get("description"))
        return {"model_version": self._mv(mv)}

    def set_model_version_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.set_model_version_tag(_str_field(req, "name"), _int_field(req, "version", required=True),
                                       _str_field(req, "key"), req.get("value", ""))
        return {}

    def delete_model_version_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.delete_model_version_tag(_str_field(req, "name"), _int_field(req, "version", required=True),
                                          _str_field(req, "key"))
        return {}

    def search_model_versions(self, req: Mapping[str, Any]) -> dict[str, Any]:
        max_results = S.max_results_value(req.get("max_results"), default=10_000)
        offset = S.decode_page_token(req.get("page_token"))
        pred = _name_filter(req.get("filter"), ("name", "run_id", "source_path"))
        names = pred.equals.get("name")
        versions = self.reg.search_model_versions(names) if names and "%" not in names else \
            self.reg.search_model_versions()
        rows = [mv for mv in versions if pred({"name": mv.model_name, "run_id": mv.run_id or "",
                                               **{f"tags.{k}": x for k, x in mv.tags.items()}})]
        rows.sort(key=lambda mv: (mv.model_name, -mv.version))
        page, token = S.page(rows[offset:offset + max_results + 1], offset, max_results)
        out: dict[str, Any] = {"model_versions": [self._mv(mv) for mv in page]}
        if token:
            out["next_page_token"] = token
        return out

    def get_model_version_download_uri(self, req: Mapping[str, Any]) -> dict[str, Any]:
        mv = self.reg.get_model_version(_str_field(req, "name"), _int_field(req, "version", required=True))
        return {"artifact_uri": self.to_proxy(mv.source_uri)}

    # -- aliases ------------------------------------------------------------------------------------
    def set_alias(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.set_alias(_str_field(req, "name"), _str_field(req, "alias"), _int_field(req, "version", required=True))
        return {}

    def delete_alias(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.reg.delete_alias(_str_field(req, "name"), _str_field(req, "alias"))
        return {}

    def get_by_alias(self, req: Mapping[str, Any]) -> dict[str, Any]:
        mv = self.reg.get_model_version_by_alias(_str_field(req, "name"), _str_field(req, "alias"))
        return {"model_version": self._mv(mv)}


class _Pred:
    def __init__(self, clauses: list[tuple[str, str, str]]):
        self.clauses = clauses
        self.equals = {k: val for k, op, val in clauses if op == "="}

    def __call__(self, rec: Mapping[str, Any]) -> bool:
        import re

        for key, op, val in self.clauses:
            got = rec.get(key)
            if got is None:
                if op == "!=":  # a missing tag differs from any value (MLflow's clients rely on it)
                    continue
                return False
            if op == "=" and got != val or op == "!=" and got == val:
                return False
            if op in ("LIKE", "ILIKE"):
                rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in val)
                if not re.fullmatch(rx, got, re.S | (re.I if op == "ILIKE" else 0)):
                    return False
        return True


def _name_filter(text: Any, keys: tuple[str, ...]) -> _Pred:
    """MLflow's registry filters: ``name = 'x'``, ``name LIKE 'a%'``, ``run_id = '...'``, ``tags.k = 'v'``."""
    import re

    if text is None or not str(text).strip():
        return _Pred([])
    if not isinstance(text, str):
        raise InvalidInputError(f"filter must be a string, got {text!r}")
    clause = re.compile(r"""\s*(\w+|tags?\.(?:`[^`]+`|"[^"]+"|[\w.\-/]+))\s*(=|!=|LIKE|ILIKE)\s*
                            (?:'((?:[^']|'')*)'|"((?:[^"]|"")*)")\s*""", re.X | re.I)
    out = []
    for p in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = clause.fullmatch(p)
        key = m.group(1) if m else None
        if not m or (not key.startswith(("tags.", "tag.")) and key not in keys):
            raise InvalidInputError(f"invalid filter clause {p!r}: use {' or '.join(keys)} or tags.<key> with =, "
                                    "!=, LIKE or ILIKE and a quoted value, joined by AND")
        if key.startswith(("tags.", "tag.")):
            k = key.split(".", 1)[1]
            key = "tags." + (k[1:-1] if k[:1] in "`\"" else k)
        val = m.group(3) if m.group(3) is not None else m.group(4)
        out.append((key, m.group(2).upper(), val.replace("''", "'")))
    return _Pred(out)

