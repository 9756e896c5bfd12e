"""Identifiers derived from names, shared by every layer."""

from __future__ import annotations

import hashlib

DEFAULT_EXPERIMENT = "Default"


def experiment_id_for(name: str) -> str:
    """Experiment ids derive from names, so concurrent creators agree without a lookup."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
