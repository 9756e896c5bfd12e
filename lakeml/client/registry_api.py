"""Model registry methods of the client; delegates to :mod:`lakeml.registry`."""

from __future__ import annotations


class RegistryMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` for the model registry."""
