"""Validation of the registry's free-form arguments: tags and text fields."""

from __future__ import annotations

from typing import Any, Mapping

from lakeml import validation as v
from lakeml.errors import InvalidInputError


def tags_arg(tags: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    """Validated registry tags."""
    return {v.validate_key(k, f"{what} tag"): v.tag_value(val, k) for k, val in (tags or {}).items()}


def text_arg(value: str | None, what: str) -> str | None:
    """A validated free-text field (description, reason)."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if value is not None and len(value) > v.MAX_PARAM_VALUE_LENGTH:
        raise InvalidInputError(f"{what} is {len(value)} characters; the limit is {v.MAX_PARAM_VALUE_LENGTH}")
    return value if value is None else v.utf8_text(value, what)
