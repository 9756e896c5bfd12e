"""Retries: one commit-retry policy (:func:`retry_commit`) and S3 retry defaults for pyiceberg.

Every lakeml write that can lose a compare-and-swap race (committer, registry ledger,
compaction, snapshot expiry, table evolution) goes through :func:`retry_commit`: it calls
the attempt again with exponential backoff and jitter until its deadline, logs each retry at
DEBUG and counts it (:func:`retry_stats`, shown by ``lakeml doctor``), warns only when it gives
up or when a commit was slow, and raises :class:`~lakeml.errors.CommitError` when it gives up.

pyiceberg builds its own pyarrow ``S3FileSystem`` from the catalog properties; the defaults
below (only set when the user has not) make it retry throttling, 5xx answers and dropped
connections with the AWS standard strategy, ``S3_ATTEMPTS`` times per request, and bound each
request with timeouts. What still fails after that reaches :func:`retry_commit`.

Importable without pyiceberg.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from lakeml.errors import CommitError
from lakeml.storage.config import S3_CONNECT_TIMEOUT, S3_REQUEST_TIMEOUT, S3_RETRY_STRATEGY_IMPL, WAREHOUSE

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig

log = logging.getLogger("lakeml.retry")
T = TypeVar("T")

SLOW_COMMIT_S = 10.0  # a commit that took longer than this (retries included) is worth a warning
_stats_lock = threading.Lock()
_stats: dict[str, dict[str, int]] = {}


def count(what: str, event: str = "retries", n: int = 1) -> None:
    """Add ``n`` to the process-wide counter ``event`` of ``what``: "retries", "gave_up", "slow", or
    another event of a demoted library message (see :mod:`lakeml.logs`)."""
    with _stats_lock:
        row = _stats.setdefault(what, {"retries": 0, "gave_up": 0, "slow": 0})
        row[event] = row.get(event, 0) + n


def retry_stats() -> dict[str, dict[str, int]]:
    """A copy of this process's retry counters: ``{what: {"retries": n, "gave_up": n, "slow": n, ...}}``."""
    with _stats_lock:
        return {k: dict(v) for k, v in _stats.items()}


def describe_retry_stats(stats: dict[str, dict[str, int]] | None = None) -> str:
    """One line for ``lakeml doctor``: the retry counters (this process's by default)."""
    stats = retry_stats() if stats is None else stats
    parts = [f"{what}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in row.items() if n)
             for what, row in sorted(stats.items()) if any(row.values())]
    return "; ".join(parts) if parts else "no commit retried in this process"


def reset_retry_stats() -> None:
    """Zero the counters (tests, long-lived servers after a scrape)."""
    with _stats_lock:
        _stats.clear()


def retry_commit(attempt: Callable[[int], T], *, what: str, deadline: float = 120.0,
                 retry_on: tuple[type[BaseException], ...] = (Exception,),
                 sleep: Callable[[float], Any] = time.sleep,
                 on_retry: Callable[[int, BaseException], Any] | None = None,
                 base_delay: float = 0.05, max_delay: float = 5.0,
                 slow_after: float = SLOW_COMMIT_S, hint: str | None = None, key: str | None = None) -> T:
    """Return ``attempt(n)`` for the first n = 0, 1, 2... that does not raise one of ``retry_on``.

    Between attempts it sleeps ``base_delay`` doubling up to ``max_delay``, with jitter (×0.5 to
    ×1.5), calling ``on_retry(n, error)`` first. ``attempt`` gets its number so that it can reload
    or check whether an earlier, uncertain attempt landed. When the next try would start after
    ``deadline`` seconds, raises :class:`CommitError` naming ``what``, chained to the last error.
    Errors outside ``retry_on`` propagate at once, unchanged. ``hint`` replaces the generic
    "how to fix" sentence of that error. Retries are counted under ``key`` (default ``what``):
    give a stable one, such as the table, when ``what`` holds varying details.
    """
    key = key or what
    start = time.monotonic()
    stop_at = start + deadline
    delay = base_delay
    n = 0
    while True:
        try:
            result = attempt(n)
        except retry_on as e:
            err = e
        else:
            took = time.monotonic() - start
            if took > slow_after:
                count(key, "slow")
                log.warning("%s was slow: %.1fs and %d retries (see 'lakeml doctor')", what, took, n)
            return result
        wait = delay * (0.5 + random.random())
        if time.monotonic() + wait > stop_at:
            count(key, "gave_up")
            log.warning("%s gave up after %d attempts in %.1fs (%s: %s)", what, n + 1,
                        time.monotonic() - start, type(err).__name__, err)
            raise CommitError(
                f"could not complete {what} within {deadline:g}s after {n + 1} attempts "
                f"({type(err).__name__}: {err}). " + (hint or "Another writer kept winning or storage kept "
                "failing: check storage and the catalog with 'lakeml doctor', then try again.")) from err
        count(key)
        log.debug("%s: attempt %d failed (%s: %s); retrying in %.2fs", what, n + 1, type(err).__name__, err, wait)
        if on_retry is not None:
            on_retry(n, err)
        sleep(wait)
        delay = min(delay * 2, max_delay)
        n += 1


# -- S3 request retries (pyiceberg's pyarrow FileIO) ------------------------------------------------
S3_ATTEMPTS = 8
DEFAULTS = {
    S3_RETRY_STRATEGY_IMPL: "lakeml.storage.retry.S3RetryStrategy",
    S3_CONNECT_TIMEOUT: "5",
    S3_REQUEST_TIMEOUT: "30",
}


def with_storage_defaults(config: "LakeConfig") -> "LakeConfig":
    """``config`` with lakeml's S3 retry and timeout defaults added (never overriding a set key)."""
    from lakeml.storage.objectstore import uses_s3

    props = config.properties
    s3 = uses_s3(props) or str(props.get(WAREHOUSE, "")).startswith("s3")
    missing = {k: v for k, v in DEFAULTS.items() if k not in props}
    if not s3 or not missing:
        return config
    return dataclasses.replace(config, properties={**props, **missing})


def __getattr__(name: str) -> Any:  # the class is built on first use, so importing lakeml stays light
    if name == "S3RetryStrategy":
        from pyarrow.fs import AwsStandardS3RetryStrategy

        class S3RetryStrategy(AwsStandardS3RetryStrategy):
            """AWS standard retries (throttling, 5xx, connection errors), ``S3_ATTEMPTS`` tries."""

            def __init__(self, max_attempts: int = S3_ATTEMPTS):
                super().__init__(max_attempts)

        globals()[name] = S3RetryStrategy
        return S3RetryStrategy
    raise AttributeError(name)
