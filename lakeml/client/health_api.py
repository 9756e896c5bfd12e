"""Table-health methods of the client (``Lake.maintain``, recovery)."""

from __future__ import annotations


class HealthMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` that keep the tables healthy."""
