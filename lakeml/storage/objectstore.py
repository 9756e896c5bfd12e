"""A pyarrow filesystem for a URI (file:// or s3://), built from pyiceberg's s3.* keys."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

from lakeml.errors import ConfigError


def filesystem(uri: str, props: dict[str, str], *, timeout: float = 10.0, attempts: int = 5) -> tuple[Any, str]:
    """Return ``(pyarrow FileSystem, path inside it)`` for ``uri`` (S3: ``attempts`` tries per request)."""
    from pyarrow import fs as pafs

    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), unquote(parsed.path) if parsed.scheme else uri  # file URIs are %-encoded
    if parsed.scheme in ("s3", "s3a", "s3n"):
        return s3_filesystem(props, timeout=timeout, attempts=attempts), f"{parsed.netloc}{parsed.path}"
    raise ConfigError(f"unsupported storage URI {uri!r}: use file:// or s3:// (MinIO, SeaweedFS, AWS)")


def s3_filesystem(props: dict[str, str], *, timeout: float = 10.0, attempts: int = 5) -> Any:
    from pyarrow import fs as pafs

    kwargs: dict[str, Any] = {
        "connect_timeout": timeout, "request_timeout": timeout,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
    }
    if endpoint := props.get("s3.endpoint"):
        ep = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        kwargs["endpoint_override"] = ep.netloc
        kwargs["scheme"] = ep.scheme or "http"
    if key := props.get("s3.access-key-id"):
        kwargs["access_key"] = key
        kwargs["secret_key"] = props.get("s3.secret-access-key", "")
        if tok := props.get("s3.session-token"):
            kwargs["session_token"] = tok
    kwargs["region"] = props.get("s3.region", "us-east-1")
    style = str(props.get("s3.path-style-access", "true")).lower()
    kwargs["force_virtual_addressing"] = style in ("false", "0", "no")
    return pafs.S3FileSystem(**kwargs)
