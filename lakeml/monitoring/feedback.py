"""Rows of the ``feedback`` table: ground truth for a logged prediction."""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

from lakeml.errors import InvalidInputError

MAX_REQUEST_ID = 200
MAX_LABEL_JSON = 65_536
MAX_BULK = 100_000


def feedback_row(request_id: Any, label: Any, row_index: Any, logged_at: int, user: str | None) -> tuple:
    """One ``feedback`` row in contract order, after checking each value."""
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_REQUEST_ID:
        raise InvalidInputError(f"request_id {request_id!r} must be a non-empty string of at most {MAX_REQUEST_ID} "
                                "characters: the request id of the prediction (predictions.request_id)")
    if row_index is not None and (isinstance(row_index, bool) or not isinstance(row_index, int)
                                  or not 0 <= row_index < 2**31):
        raise InvalidInputError(f"row_index {row_index!r} must be an integer >= 0 (the row of the request), "
                                "or None for every row of the request")
    number = label_number(label)
    try:
        text = json.dumps(label, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInputError(f"label {label!r} of request {request_id!r} must be a JSON value (a number, a "
                                "string, a boolean...) and finite") from None
    if len(text) > MAX_LABEL_JSON:
        raise InvalidInputError(f"label of request {request_id!r} is {len(text)} characters as JSON; the limit is "
                                f"{MAX_LABEL_JSON}")
    return (request_id, row_index, number, text, logged_at, user)


def label_number(label: Any) -> float | None:
    """The label as a number (booleans are 0/1); None when it is not a number."""
    if isinstance(label, bool):
        return float(label)
    if isinstance(label, (int, float)):
        x = float(label)
        if not math.isfinite(x):
            raise InvalidInputError(f"label {label!r} must be finite")
        return x
    return None


def bulk_rows(rows: Iterable[Any], logged_at: int, user: str | None) -> list[tuple]:
    """``feedback`` rows from mappings ``{request_id, label[, row_index]}`` or tuples
    ``(request_id, label[, row_index])``; all are checked before any is kept."""
    out = []
    for i, r in enumerate(rows):
        if len(out) >= MAX_BULK:
            raise InvalidInputError(f"more than {MAX_BULK} feedback rows in one call; send them in batches")
        if isinstance(r, Mapping):
            extra = set(r) - {"request_id", "label", "row_index"}
            if extra or "request_id" not in r or "label" not in r:
                raise InvalidInputError(f"feedback row {i} has keys {sorted(r)}: it needs request_id and label, "
                                        "and may have row_index (nothing else)")
            args = (r["request_id"], r["label"], r.get("row_index"))
        elif isinstance(r, (tuple, list)) and len(r) in (2, 3):
            args = (r[0], r[1], r[2] if len(r) == 3 else None)
        else:
            raise InvalidInputError(f"feedback row {i} is {type(r).__name__}: give a mapping "
                                    "{request_id, label, row_index?} or a tuple (request_id, label[, row_index])")
        try:
            out.append(feedback_row(*args, logged_at, user))
        except InvalidInputError as e:
            raise InvalidInputError(f"feedback row {i}: {e}") from None
    return out
