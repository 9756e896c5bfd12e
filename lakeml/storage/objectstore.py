"""Object storage from pyiceberg's ``s3.*`` catalog properties: parsed once (:class:`S3Settings`),
then turned into a pyarrow filesystem here and into a DuckDB secret by :mod:`lakeml.query.attach`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from lakeml.errors import ConfigError
from lakeml.storage.config import (S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_FORCE_VIRTUAL_ADDRESSING, S3_PATH_STYLE,
                                   S3_REGION, S3_SECRET_ACCESS_KEY, S3_SESSION_TOKEN)

DEFAULT_REGION = "us-east-1"
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class S3Settings:
    """The S3 connection described by a property bag (pyiceberg's keys, plus ``s3.path-style-access``).

    ``endpoint``: ``host[:port]`` of a non-AWS endpoint (MinIO, SeaweedFS), None for AWS;
    ``virtual_addressing``: bucket in the host name (AWS style) rather than in the path.
    """

    region: str = DEFAULT_REGION
    endpoint: str | None = None
    use_ssl: bool = True
    access_key: str | None = None
    secret_key: str = ""
    session_token: str | None = None
    virtual_addressing: bool = False

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "S3Settings":
        endpoint, use_ssl = None, True
        if ep := props.get(S3_ENDPOINT):
            u = urlparse(ep if "://" in ep else f"http://{ep}")
            endpoint, use_ssl = u.netloc, u.scheme == "https"
        if (virtual := props.get(S3_FORCE_VIRTUAL_ADDRESSING)) is not None:
            virtual_addressing = str(virtual).strip().lower() not in _FALSE
        else:  # path style unless it is turned off: MinIO and SeaweedFS need it
            virtual_addressing = str(props.get(S3_PATH_STYLE, "true")).strip().lower() in _FALSE
        key = props.get(S3_ACCESS_KEY_ID) or None
        return cls(region=props.get(S3_REGION) or DEFAULT_REGION, endpoint=endpoint, use_ssl=use_ssl,
                   access_key=key, secret_key=props.get(S3_SECRET_ACCESS_KEY, "") if key else "",
                   session_token=(props.get(S3_SESSION_TOKEN) or None) if key else None,
                   virtual_addressing=virtual_addressing)


def uses_s3(props: dict[str, str]) -> bool:
    """Whether a property bag configures S3 (any ``s3.*`` key)."""
    return any(k.startswith("s3.") for k in props)


def fs_path(uri: str) -> str:
    """A URI as a path inside its pyarrow filesystem (``s3://b/k`` -> ``b/k``, ``file:///x%20y`` -> ``/x y``)."""
    u = urlparse(uri)
    if u.scheme in ("", "file"):
        return unquote(u.path) if u.scheme else uri  # file URIs are %-encoded
    return f"{u.netloc}{u.path}"


def filesystem(uri: str, props: dict[str, str], *, timeout: float = 10.0, attempts: int = 5) -> tuple[Any, str]:
    """Return ``(pyarrow FileSystem, path inside it)`` for ``uri`` (S3: ``attempts`` tries per request)."""
    from pyarrow import fs as pafs

    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        return pafs.LocalFileSystem(), fs_path(uri)
    if scheme in ("s3", "s3a", "s3n"):
        return s3_filesystem(props, timeout=timeout, attempts=attempts), fs_path(uri)
    raise ConfigError(f"unsupported storage URI {uri!r}: use file:// or s3:// (MinIO, SeaweedFS, AWS)")


def s3_filesystem(props: dict[str, str], *, timeout: float = 10.0, attempts: int = 5) -> Any:
    """A pyarrow ``S3FileSystem`` for :class:`S3Settings` of ``props``, with timeouts and retries."""
    from pyarrow import fs as pafs

    s = S3Settings.from_properties(props)
    kwargs: dict[str, Any] = {
        "connect_timeout": timeout, "request_timeout": timeout,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
        "region": s.region, "force_virtual_addressing": s.virtual_addressing,
    }
    if s.endpoint:
        kwargs["endpoint_override"] = s.endpoint
        kwargs["scheme"] = "https" if s.use_ssl else "http"
    if s.access_key:
        kwargs.update(access_key=s.access_key, secret_key=s.secret_key)
        if s.session_token:
            kwargs["session_token"] = s.session_token
    return pafs.S3FileSystem(**kwargs)
