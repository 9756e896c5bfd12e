"""The remote client: the ``Lake`` interface over ``lakeml server`` (``lakeml.connect("http://host:5000")``).

Imports nothing heavy: :mod:`lakeml.remote.http` is the standard library only; pyarrow and polars
load when the first metric batch is built or a DataFrame is asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RemoteLake", "connect", "is_remote_uri"]


def is_remote_uri(uri: Any) -> bool:
    """True for ``http://`` and ``https://`` addresses (a ``lakeml server``)."""
    return isinstance(uri, str) and uri.lower().startswith(("http://", "https://"))


def connect(url: str | None = None, **kwargs: Any):
    """A :class:`~lakeml.remote.lake.RemoteLake` for ``url`` (default ``$LAKEML_TRACKING_URI``)."""
    from lakeml.remote.lake import connect as _connect

    return _connect(url, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "RemoteLake":
        from lakeml.remote.lake import RemoteLake

        return RemoteLake
    raise AttributeError(f"module 'lakeml.remote' has no attribute {name!r}")
