"""SQL over the lake from the client (``Lake.sql``); filled in by the query work."""

from __future__ import annotations


class SqlMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` that run SQL."""
