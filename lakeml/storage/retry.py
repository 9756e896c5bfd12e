"""Retries against object storage: defaults for pyiceberg's S3 FileIO.

pyiceberg builds its own pyarrow ``S3FileSystem`` from the catalog properties; these
defaults (only set when the user has not) make it retry throttling, 5xx answers and
dropped connections with the AWS standard strategy (exponential backoff with jitter),
``S3_ATTEMPTS`` times per request, and bound each request with timeouts. What still
fails after that reaches the committer, which retries the whole commit with backoff
until its deadline, then raises :class:`~lakeml.errors.CommitError` and keeps the rows.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.storage.config import LakeConfig

S3_ATTEMPTS = 8
DEFAULTS = {
    "s3.retry-strategy-impl": "lakeml.storage.retry.S3RetryStrategy",
    "s3.connect-timeout": "5",
    "s3.request-timeout": "30",
}


def with_storage_defaults(config: "LakeConfig") -> "LakeConfig":
    """``config`` with lakeml's S3 retry and timeout defaults added (never overriding a set key)."""
    props = config.properties
    uses_s3 = any(k.startswith("s3.") for k in props) or str(props.get("warehouse", "")).startswith("s3")
    missing = {k: v for k, v in DEFAULTS.items() if k not in props}
    if not uses_s3 or not missing:
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
