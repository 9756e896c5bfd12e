"""Checkpoint retention: keep the last K checkpoints plus the best N by a metric; prune the rest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from lakeml.entities import _Record
from lakeml.errors import InvalidInputError

PREFIX = "checkpoints"


@dataclass(frozen=True)
class Checkpoint(_Record):
    """One stored checkpoint of a run."""

    run_id: str
    step: int
    path: str  # run-relative folder, checkpoints/step-<n>
    uri: str
    metric_key: str | None = None
    metric_value: float | None = None
    mode: str | None = None
    size: int | None = None
    sha256: str | None = None
    saved_at: datetime | None = None


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the ``keep_last`` newest steps plus the ``keep_best`` best by metric (``mode`` min or max)."""

    keep_last: int = 2
    keep_best: int = 1
    mode: str = "min"

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_best"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 0:
                raise InvalidInputError(f"{name} must be an integer >= 0, got {val!r}")
        if self.keep_last + self.keep_best < 1:
            raise InvalidInputError("keep_last + keep_best must be at least 1, or every checkpoint would be deleted")
        if self.mode not in ("min", "max"):
            raise InvalidInputError(f"mode must be 'min' (lower metric is better) or 'max', got {self.mode!r}")

    def _rank(self, c: Checkpoint) -> float:
        x = c.metric_value
        if x is None or math.isnan(x):
            return math.inf  # unranked checkpoints are never "best"
        return x if self.mode == "min" else -x

    def best(self, checkpoints: list[Checkpoint]) -> list[Checkpoint]:
        ranked = [c for c in checkpoints if c.metric_value is not None and not math.isnan(c.metric_value)]
        return sorted(ranked, key=lambda c: (self._rank(c), -c.step))

    def split(self, checkpoints: list[Checkpoint]) -> tuple[list[Checkpoint], list[tuple[Checkpoint, str]]]:
        """``(kept, [(pruned, reason), ...])`` for the live checkpoints of one run."""
        by_step = sorted(checkpoints, key=lambda c: c.step)
        last = {c.step for c in by_step[-self.keep_last:]} if self.keep_last else set()
        best = {c.step for c in self.best(by_step)[: self.keep_best]}
        kept = [c for c in by_step if c.step in last or c.step in best]
        key = next((c.metric_key for c in by_step if c.metric_key), "metric")
        reason = (f"retention: not among the last {self.keep_last} steps nor the best {self.keep_best} "
                  f"by {key} ({self.mode})")
        return kept, [(c, reason) for c in by_step if c.step not in last and c.step not in best]


def step_folder(step: int) -> str:
    return f"{PREFIX}/step-{step}"
