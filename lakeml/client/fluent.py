"""The fluent API: module-level verbs that log into the active run.

The active-run stack is shared by every thread of the process and guarded by a
lock, so data-loader threads can log into the run the main thread started.
A run used as a context manager ends FINISHED, FAILED (an exception, whose
message is kept) or KILLED (Ctrl-C or SIGTERM). Ending a run hands its rows to the
committer and returns without waiting for Iceberg (reads in this process still see
them); ``end_run(wait=True)``, ``ActiveRun.end(wait=True)`` or ``LAKEML_SYNC_END=1``
wait until they are committed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from typing import Any, Mapping

from lakeml.entities import DatasetInput, Run, RunStatus
from lakeml.errors import InvalidInputError, LakemlError

_lock = threading.RLock()
_stack: list["ActiveRun"] = []
_lake: Any = None
_sigterm_installed = False
_excepthook_installed = False
_last_exc: list[BaseException] = []  # why the interpreter is dying (see _install_excepthook)


class RunTerminated(SystemExit):
    """Raised in the main thread on SIGTERM so that active runs end KILLED."""


def set_lake(lake: Any) -> None:
    """Make ``lake`` (from :func:`lakeml.connect`) the one the fluent API logs into."""
    global _lake
    with _lock:
        _lake = lake


def get_lake() -> Any:
    """The fluent API's lake; created from the environment (embedded default) on first use."""
    global _lake
    with _lock:
        if _lake is None:
            from lakeml.client.lake import connect

            _lake = connect()
        return _lake


class ActiveRun:
    """The run started by :func:`start_run`; use it as a context manager."""

    def __init__(self, lake: Any, run: Run):
        self.lake = lake
        self.info = run
        self.ended = False
        self._log_metric = lake.tracking.log_metric  # bound once: lakeml.log_metric is the hot path

    @property
    def id(self) -> str:
        return self.info.run_id

    run_id = id

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.info.run_name!r})"

    def __enter__(self) -> "ActiveRun":
        return self

    def end(self, status: str | RunStatus = RunStatus.FINISHED, *, wait: bool | None = None) -> None:
        """End this run; ``wait=True`` returns only once its rows are committed (see :func:`end_run`)."""
        _end(self, RunStatus(status), None, wait)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status, error = RunStatus.FINISHED, None
        elif issubclass(exc_type, (KeyboardInterrupt, RunTerminated)):
            status, error = RunStatus.KILLED, f"{exc_type.__name__}"
        else:
            status = RunStatus.FAILED
            error = "".join(traceback.format_exception_only(exc_type, exc)).strip()
        _end(self, status, error)
        return False


def _install_sigterm() -> None:
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def _on_term(signum, frame):  # pragma: no cover - exercised in a subprocess test
                exc = RunTerminated(128 + signum)
                _last_exc.append(exc)  # SystemExit skips sys.excepthook; the exit handler must see it
                raise exc
            signal.signal(signal.SIGTERM, _on_term)
    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
        return
    _sigterm_installed = True


def _install_excepthook() -> None:
    """Remember why the interpreter dies (for runs still active at exit); installed by the first start_run."""
    global _excepthook_installed
    with _lock:
        if _excepthook_installed:
            return
        prev = sys.excepthook

        def _excepthook(tp, value, tb):
            _last_exc.append(value)
            prev(tp, value, tb)

        sys.excepthook = _excepthook
        _excepthook_installed = True


def start_run(experiment: str | None = None, run_name: str | None = None, *, tags: Mapping[str, Any] | None = None,
              nested: bool = False, run_id: str | None = None, parent_run_id: str | None = None,
              lake: Any = None) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it active.

    ``experiment`` defaults to the parent's (nested runs), else ``$LAKEML_EXPERIMENT``, else
    "Default". With an active run, pass ``nested=True`` to start a child run.
    """
    lake = lake or get_lake()
    with _lock:
        parent = _stack[-1] if _stack else None
        if parent is not None and not nested and run_id is None:
            raise InvalidInputError(f"run {parent.id} is already active; end it first, or pass nested=True "
                                    "to start a child run")
        if run_id is not None:
            info = lake.get_run(run_id)
            lake.tracking.run_state(run_id)
        else:
            parent_id = parent_run_id or (parent.id if (parent is not None and nested) else None)
            inherited = parent.info.experiment_name if (parent is not None and parent_id == parent.id) else None
            exp = experiment or inherited or os.environ.get("LAKEML_EXPERIMENT") or "Default"
            info = lake.create_run(exp, run_name=run_name, tags=tags, parent_run_id=parent_id)
        active = ActiveRun(lake, info)
        _stack.append(active)
    _install_sigterm()
    _install_excepthook()
    from lakeml.storage.committer import on_exit

    on_exit(_end_active_runs_at_exit)
    return active


def _end(active: ActiveRun, status: RunStatus, error: str | None, wait: bool | None = None) -> None:
    with _lock:
        if active.ended:
            return
        active.ended = True
        if active in _stack:
            _stack.remove(active)
    active.lake.set_terminated(active.id, status, error=error, wait=wait)


def end_run(status: str | RunStatus = RunStatus.FINISHED, *, wait: bool | None = None) -> None:
    """End the active run (FINISHED unless told otherwise) and hand what it logged to the committer.

    Returns once the rows are in the fsynced spool, without waiting for Iceberg; reads in this
    process see them. ``wait=True`` (or ``$LAKEML_SYNC_END=1``) returns only once they are committed.
    """
    with _lock:
        active = _stack[-1] if _stack else None
    if active is not None:
        _end(active, RunStatus(status), None, wait)


def active_run() -> ActiveRun | None:
    with _lock:
        return _stack[-1] if _stack else None


def _current() -> ActiveRun:
    with _lock:
        if _stack:
            return _stack[-1]
    raise LakemlError("no active run; call lakeml.start_run() first (or use the explicit client with a run id)")


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Buffer one metric point into the active run; never blocks on I/O."""
    a = _stack[-1] if _stack else _current()
    a._log_metric(a.info.run_id, key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    a = _current()
    a.lake.log_metrics(a.id, metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    a = _current()
    a.lake.log_param(a.id, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    a = _current()
    a.lake.log_params(a.id, params)


def set_tag(key: str, value: Any) -> None:
    a = _current()
    a.lake.set_tag(a.id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    a = _current()
    a.lake.set_tags(a.id, tags)


def log_artifact(local_path: str, artifact_path: str | None = None) -> str:
    a = _current()
    return a.lake.log_artifact(a.id, local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> list[str]:
    a = _current()
    return a.lake.log_artifacts(a.id, local_dir, artifact_path)


def log_input(*, table: str | None = None, path: str | None = None, role: str = "train",
              snapshot_id: int | None = None, name: str | None = None) -> DatasetInput:
    """Record the input the active run reads: an Iceberg table snapshot or a file digest."""
    a = _current()
    return a.lake.log_input(a.id, table=table, path=path, role=role, snapshot_id=snapshot_id, name=name)


def flush(timeout: float | None = None) -> None:
    """Commit everything logged so far; returns once it is in the Iceberg tables."""
    with _lock:
        lakes = {id(a.lake): a.lake for a in _stack}
        if _lake is not None:
            lakes[id(_lake)] = _lake
    for lake in lakes.values():
        lake.flush(timeout)


def _end_active_runs_at_exit() -> None:
    """End the runs still active when the interpreter exits (registered with the committer's exit flush)."""
    with _lock:
        pending = list(reversed(_stack))
    for a in pending:
        exc = _last_exc[-1] if _last_exc else None
        if exc is None:
            status, err = RunStatus.FINISHED, None
        elif isinstance(exc, (KeyboardInterrupt, RunTerminated)):
            status, err = RunStatus.KILLED, type(exc).__name__
        else:
            status, err = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
        try:
            _end(a, status, err)
        except BaseException as e:  # pragma: no cover
            print(f"lakeml: could not end run {a.id} at exit: {e}", file=sys.stderr)
