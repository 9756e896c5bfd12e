"""``lake.registry.checkpoints``: store, list and load a run's training checkpoints under a retention policy."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError
from lakeml.registry.checkpoints import Checkpoint, RetentionPolicy, step_folder

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.client import QueryClient
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.committer import RowBuffer
    from lakeml.tracking.client import TrackingClient


class Checkpoints:
    """Checkpoints of runs, stored as artifacts and recorded in the ``checkpoints`` table."""

    def __init__(self, tracking: "TrackingClient", query: "QueryClient", artifacts: "ArtifactStore",
                 buffer: "RowBuffer", *, clock: Callable[[], int], before_read: Callable[[], None]):
        self.tracking = tracking
        self.query = query
        self.artifacts = artifacts
        self._buffer = buffer
        self.clock = clock
        self.before_read = before_read
        self._live: dict[str, list[Checkpoint]] = {}  # run id -> checkpoints still stored (after the first read)
        self._lock = threading.Lock()

    def log_checkpoint(self, run_id: str, obj_or_path: Any, *, step: int,
                       metric: float | Mapping[str, float] | None = None, metric_key: str | None = None,
                       mode: str = "min", keep_last: int = 2, keep_best: int = 1) -> Checkpoint:
        """Store a checkpoint of the run at ``step`` and apply the retention policy.

        ``obj_or_path``: a file or folder path (stored as is) or any object (stored with joblib).
        ``metric``: its value (named by ``metric_key``, default "metric") or ``{"val_loss": 0.31}``.
        The last ``keep_last`` steps plus the best ``keep_best`` by the metric (``mode`` min or max) are
        kept; the others are deleted from storage and a 'pruned' row records why.
        """
        import joblib

        policy = RetentionPolicy(keep_last, keep_best, mode)
        step = v.step_value(step, "checkpoint")
        key, value = _checkpoint_metric(metric, metric_key)
        run_uri = self.tracking.artifact_uri(run_id)
        live = self._live_checkpoints(run_id)
        if any(c.step == step for c in live):
            raise ConflictError(f"run {run_id} already has a checkpoint at step {step}; checkpoints are not "
                                "overwritten, use a new step")
        folder = step_folder(step)
        tmp = None
        try:
            if isinstance(obj_or_path, (str, os.PathLike)):
                src = Path(obj_or_path)
                if not src.exists():
                    raise NotFoundError(f"checkpoint path {str(src)!r} does not exist; pass a file, a folder, "
                                        "or the object itself")
                objs = (self.artifacts.put_dir(src, run_uri, folder) if src.is_dir()
                        else [self.artifacts.put_file(src, run_uri, f"{folder}/{src.name}")])
            else:
                tmp = Path(tempfile.mkdtemp(prefix="lakeml-ckpt-"))
                joblib.dump(obj_or_path, tmp / "checkpoint.joblib")
                objs = [self.artifacts.put_file(tmp / "checkpoint.joblib", run_uri, f"{folder}/checkpoint.joblib")]
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        digest = objs[0].sha256 if len(objs) == 1 else hashlib.sha256(
            "".join(f"{o.path}:{o.sha256}\n" for o in objs).encode()).hexdigest()
        now = self.clock()
        ck = Checkpoint(run_id, step, folder, f"{run_uri}/{folder}", key, value, mode, sum(o.size for o in objs),
                        digest, us_to_datetime(now))
        self._buffer.add((run_id, step, "saved", ck.path, ck.uri, key, value, mode, ck.size, ck.sha256, None, now))
        live.append(ck)
        kept, pruned = policy.split(live)
        for old, reason in pruned:
            self.artifacts.delete(old.uri)
            self._buffer.add((run_id, old.step, "pruned", old.path, old.uri, old.metric_key, old.metric_value, mode,
                              old.size, old.sha256, reason, self.clock()))
        live[:] = kept
        return ck

    def _live_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """Checkpoints of the run that are still stored (cached per client after the first read)."""
        v.validate_run_id(run_id)
        if run_id not in self._live:
            self.tracking.run_state(run_id)
            found = self.list_checkpoints(run_id)
            with self._lock:
                self._live.setdefault(run_id, found)
        return self._live[run_id]

    def list_checkpoints(self, run_id: str, *, include_pruned: bool = False) -> list[Checkpoint]:
        """The run's checkpoints still in storage (or all ever saved), by step."""
        v.validate_run_id(run_id)
        self.before_read()
        rows = self.query.engine.arrow(
            "SELECT s.*, p.step IS NOT NULL AS pruned FROM (SELECT * FROM lakeml.checkpoints WHERE run_id = $1 "
            "AND event = 'saved') s LEFT JOIN (SELECT DISTINCT step FROM lakeml.checkpoints WHERE run_id = $1 "
            "AND event = 'pruned') p USING (step) ORDER BY s.step", [run_id], tables=["checkpoints"]).to_pylist()
        return [Checkpoint(r["run_id"], r["step"], r["path"], r["uri"], r["metric_key"], r["metric_value"], r["mode"],
                           r["size"], r["sha256"], r["event_time"])
                for r in rows if include_pruned or not r["pruned"]]

    def load_checkpoint(self, run_id: str, step: int | str = "latest", *,
                        dst_path: str | os.PathLike | None = None) -> Any:
        """Load a checkpoint: ``step`` is a step number, ``"latest"`` or ``"best"``. An object saved by
        ``log_checkpoint`` comes back as that object; a stored file or folder as its local path."""
        import joblib

        live = self.list_checkpoints(run_id)
        if not live:
            raise NotFoundError(f"run {run_id} has no stored checkpoints; save them with lakeml.log_checkpoint()")
        if step == "latest":
            ck = live[-1]
        elif step == "best":
            mode = live[-1].mode or "min"
            ranked = RetentionPolicy(1, 1, mode).best(live)
            if not ranked:
                raise NotFoundError(f"no checkpoint of run {run_id} has a metric, so none is 'best'")
            ck = ranked[0]
        else:
            step = v.step_value(step, "checkpoint")
            match = [c for c in live if c.step == step]
            if not match:
                raise NotFoundError(f"run {run_id} has no stored checkpoint at step {step} (stored: "
                                    f"{', '.join(str(c.step) for c in live)})")
            ck = match[0]
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lakeml-ckpt-"))
        folder = Path(self.artifacts.download(self.tracking.artifact_uri(run_id), ck.path, dst))
        files = [p for p in folder.rglob("*") if p.is_file()]
        if len(files) == 1 and files[0].name == "checkpoint.joblib":
            obj = joblib.load(files[0])
            if dst_path is None:
                shutil.rmtree(dst, ignore_errors=True)
            return obj
        return files[0] if len(files) == 1 else folder


def _checkpoint_metric(metric: Any, metric_key: str | None) -> tuple[str | None, float | None]:
    if metric is None:
        return (v.validate_key(metric_key, "metric") if metric_key else None), None
    if isinstance(metric, Mapping):
        if len(metric) != 1:
            raise InvalidInputError(f"metric must be one value or a one-item dict like {{'val_loss': 0.3}}, got "
                                    f"{len(metric)} items")
        (k, val), = metric.items()
        return v.validate_key(k, "metric"), v.metric_value(val, k)
    key = v.validate_key(metric_key or "metric", "metric")
    return key, v.metric_value(metric, key)
