"""What the tracking client remembers about the runs it writes, and the facts of the process writing them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lakeml.entities import RunStatus
from lakeml.identity import acting_user, run_source
from lakeml.tracking import runinfo


@dataclass
class RunState:
    """A run this client logs into: enough to write its events without reading the tables."""

    experiment_id: str
    experiment_name: str | None
    run_name: str | None
    parent_run_id: str | None
    start_us: int | None
    params: dict[str, str] = field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING
    source: str | None = None  # entry point and git commit of the run (kept for its later events when a
    git_commit: str | None = None  # server writes them: the server's own process facts are not the run's)


class ProcessFacts:
    """User, entry point, git commit and host: read once per process (again after a fork), not per run event."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._facts: tuple = ()

    def get(self) -> tuple:
        if self._pid != os.getpid():
            self._facts = (runinfo.current_user(), runinfo.source(), runinfo.git_commit(), runinfo.host())
            self._pid = os.getpid()
        acting = acting_user()
        if acting:  # a server request: the caller's token name and the source it declared, not the server's
            return (acting, *run_source(), self._facts[3])
        return self._facts
