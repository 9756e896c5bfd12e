"""The model a service scores with: where it comes from, and an atomic swap when its alias moves.

A :class:`LoadedModel` is immutable; :class:`ServedModel` holds the current one in one attribute,
so a request that took it keeps scoring with it while :meth:`ServedModel.follow` loads the next
version in a background thread and swaps it in (no request is dropped or sees half a model).
Sources: :class:`LakeSource` (a model URI of the lake: ``models:/NAME@ALIAS``, ``models:/NAME/3``,
``runs:/...``) and :class:`FolderSource` (a folder written by ``lakeml models package``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lakeml.errors import InvalidInputError

log = logging.getLogger("lakeml.serving")

PACKAGE_META = "serving.json"  # what `lakeml models package` records beside the model folder


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and what a service says about it."""

    predict: Callable[[Any], Any]
    model_uri: str  # the URI the service was started with (models:/churn@champion)
    resolved_uri: str  # the exact version (models:/churn/3)
    name: str | None
    version: int | None
    flavor: str | None
    signature: dict[str, Any] | None
    lineage: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    input_kind: str = "frame"  # "array": numeric columns go to predict() as one float64 array (faster)

    def metadata(self) -> dict[str, Any]:
        return {"model_uri": self.model_uri, "resolved_uri": self.resolved_uri, "model_name": self.name,
                "model_version": self.version, "flavor": self.flavor, "signature": self.signature,
                "lineage": self.lineage, "input_kind": self.input_kind,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


def predict_fn(model: Any) -> Callable[[Any], Any]:
    """``model.predict`` when it has one, else the model itself (a callable of the python flavor)."""
    fn = getattr(model, "predict", None)
    if callable(fn):
        return fn
    if callable(model):
        return model
    raise InvalidInputError(f"cannot serve a {type(model).__name__}: it has no predict() and is not callable")


_NUMERIC = {"double", "float", "long", "int", "integer", "boolean"}


def fast_input(predict: Callable[[Any], Any], signature: dict[str, Any] | None) -> tuple[Callable[[Any], Any], str]:
    """``(predict, "array")`` when the model takes its numeric columns as a plain float64 array and
    answers exactly as with a DataFrame (checked on probe rows at load time), else ``(predict, "frame")``.

    A DataFrame costs ~0.5 ms per request to build, and scikit-learn spends as much again checking its
    column names; the array path skips both. The names and order were checked against the signature.
    """
    import warnings

    from lakeml.serving.protocol import input_columns

    cols = input_columns(signature)
    if not cols or any(str(c.get("type", "")).lower() not in _NUMERIC for c in cols):
        return predict, "frame"
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return predict, "frame"

    def quiet(x: Any) -> Any:
        with warnings.catch_warnings():  # "X does not have valid feature names": the order was checked
            warnings.simplefilter("ignore", UserWarning)
            return predict(x)

    try:
        probe = np.array([[0.0] * len(cols), [1.0] * len(cols), [-1.5] * len(cols)])
        frame = pd.DataFrame(probe, columns=[c["name"] for c in cols])
        for c in cols:
            t = str(c["type"]).lower()
            if t in ("long", "int", "integer"):
                frame[c["name"]] = frame[c["name"]].astype("int64")
            elif t == "boolean":
                frame[c["name"]] = frame[c["name"]] != 0
        a, b = np.asarray(quiet(probe)), np.asarray(predict(frame))
        if a.shape == b.shape and a.dtype == b.dtype and bool(np.all(a == b)):
            return quiet, "array"
    except Exception:  # noqa: BLE001 - any doubt: the DataFrame path
        pass
    return predict, "frame"


def lineage_summary(lin: Any) -> dict[str, Any]:
    """The part of ``lake.model_lineage`` a service shows on /metadata (JSON-ready)."""
    return {
        "run_id": lin.run_id, "run_name": lin.run_name, "experiment": lin.experiment_name, "user": lin.user,
        "git_commit": lin.git_commit, "source": lin.source, "aliases": list(lin.aliases),
        "params": dict(lin.params), "metrics": {k: (v if v == v else None) for k, v in lin.metrics.items()},
        "inputs": [{"role": i.role, "kind": i.kind, "name": i.name, "snapshot_id": i.snapshot_id,
                    "digest": i.digest} for i in lin.inputs],
    }


class LakeSource:
    """A model of the lake, by URI; ``models:/NAME@ALIAS`` can be followed as the alias moves."""

    def __init__(self, lake: Any, uri: str):
        from lakeml.registry import names

        self.lake, self.uri = lake, uri
        self.parsed = names.parse_model_uri(uri)
        ref = self.parsed.ref
        self.alias = ref.alias if ref is not None else None
        self.name = ref.name if ref is not None else None

    def current_version(self) -> int | None:
        """The version the URI points at now (None for a URI outside the registry)."""
        if self.parsed.scheme != "models":
            return None
        return self.lake.registry.state().resolve(self.parsed.ref).version

    def load(self, version: int | None = None) -> LoadedModel:
        if self.parsed.scheme != "models":
            info = self.lake.registry.models_io.get_model_info(self.uri)
            model = self.lake.registry.models_io.load_model(self.uri)
            fn, kind = fast_input(predict_fn(model), info.signature)
            return LoadedModel(fn, self.uri, info.model_uri, None, None, info.flavor, info.signature,
                               {"run_id": info.run_id}, input_kind=kind)
        reg = self.lake.registry
        mv = reg.get_model_version(self.name, version) if version is not None else \
            reg.state().resolve(self.parsed.ref)
        model = reg.models_io.load_model(mv.model_uri)
        try:
            lineage = lineage_summary(reg.deployments.model_lineage(mv.model_name, mv.version))
        except Exception as e:  # noqa: BLE001 - the run may be gone; the model still serves
            lineage = {"run_id": mv.run_id, "error": f"{type(e).__name__}: {e}"}
        fn, kind = fast_input(predict_fn(model), mv.signature)
        return LoadedModel(fn, self.uri, mv.model_uri, mv.model_name, mv.version, mv.flavor, mv.signature, lineage,
                           input_kind=kind)


class FolderSource:
    """A service folder written by ``lakeml models package`` (``model/`` and ``serving.json``)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta_path = self.folder / PACKAGE_META
        if not meta_path.is_file():
            raise InvalidInputError(f"{self.folder} has no {PACKAGE_META}; it is not a folder written by "
                                    "'lakeml models package'")
        self.meta = json.loads(meta_path.read_text())
        self.uri = self.meta.get("model_uri") or str(self.folder)
        self.alias = None
        self.name = self.meta.get("model_name")

    def current_version(self) -> int | None:
        return self.meta.get("model_version")

    def load(self, version: int | None = None) -> LoadedModel:
        from lakeml.registry import flavors, mlmodel

        folder = self.folder / self.meta.get("model_dir", "model")
        data = mlmodel.read(folder)
        model = flavors.load(folder, data)
        m = self.meta
        fn, kind = fast_input(predict_fn(model), data.get("signature"))
        return LoadedModel(fn, m.get("model_uri") or str(folder), m.get("resolved_uri") or str(folder),
                           m.get("model_name"), m.get("model_version"), data.get("flavor"), data.get("signature"),
                           dict(m.get("lineage") or {}), input_kind=kind)


class ServedModel:
    """The current :class:`LoadedModel` of a service; :meth:`follow` keeps it on the alias's version."""

    def __init__(self, source: Any, *, on_swap: Callable[[LoadedModel, LoadedModel], None] | None = None,
                 accept: Callable[[int], None] | None = None, prepare: Callable[[LoadedModel], None] | None = None):
        self.source = source
        self.current: LoadedModel = source.load()
        self.on_swap = on_swap  # called after the swap with (old, new)
        self.accept = accept  # called with a new version before it is loaded; raising refuses it
        self.prepare = prepare  # called with the loaded new model just before the swap; raising refuses it
        self.reloads = 0
        self.last_error: str | None = None
        self._refused: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load and swap in the version the source points at now, if it moved; True when swapped."""
        try:
            version = self.source.current_version()
        except Exception as e:  # noqa: BLE001 - the lake may be briefly unreachable: keep serving
            self.last_error = f"{type(e).__name__}: {e}"
            log.warning("lakeml serve: cannot resolve %s: %s", self.source.uri, self.last_error)
            return False
        old = self.current
        if version is None or version == old.version or version in self._refused:
            return False
        try:
            if self.accept is not None:
                self.accept(version)
            new = self.source.load(version)
            if self.prepare is not None:
                self.prepare(new)
        except Exception as e:  # noqa: BLE001 - a broken version must not take the service down
            self._refused.add(version)
            self.last_error = f"version {version} not served: {type(e).__name__}: {e}"
            log.error("lakeml serve: %s keeps serving version %s; %s", self.source.uri, old.version, self.last_error)
            return False
        self.current = new  # the swap: one attribute assignment, atomic for the requests in flight
        self.reloads += 1
        self.last_error = None
        log.warning("lakeml serve: %s now serves version %s (was %s)", self.source.uri, new.version, old.version)
        if self.on_swap is not None:
            try:
                self.on_swap(old, new)
            except Exception:  # noqa: BLE001
                log.exception("lakeml serve: after the swap to version %s", new.version)
        return True

    def follow(self, interval: float = 10.0) -> None:
        """Poll the source every ``interval`` seconds in a daemon thread (an alias URI only)."""
        if getattr(self.source, "alias", None) is None:
            raise InvalidInputError(f"--follow-alias needs a models:/NAME@ALIAS URI; {self.source.uri} names no "
                                    "alias")
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                self.check()

        self._thread = threading.Thread(target=loop, name="lakeml-follow-alias", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
