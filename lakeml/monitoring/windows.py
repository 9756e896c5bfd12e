"""Window sizes (``1h``, ``1d``, ``30m``, ``15s``) and ``--since`` values, as microseconds."""

from __future__ import annotations

import re
from datetime import datetime

from lakeml.clock import datetime_to_us
from lakeml.errors import InvalidInputError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
MAX_WINDOWS = 10_000  # windows of one model version in one pass


def duration_s(text: str, what: str = "window") -> int:
    """``"1h"`` -> 3600. A positive integer and one unit of s, m, h, d, w."""
    m = _DURATION.match(str(text)) if isinstance(text, str) else None
    if not m or int(m.group(1)) <= 0:
        raise InvalidInputError(f"{what} {text!r} is not a duration: use a positive number and a unit "
                                "(s, m, h, d or w), e.g. 1h or 1d")
    return int(m.group(1)) * UNITS[m.group(2)]


def time_us(value: object, now_us: int, what: str = "since") -> int | None:
    """``None``; a duration back from now (``7d``); an ISO date or time (UTC unless it says otherwise);
    a datetime; or epoch microseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return datetime_to_us(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _DURATION.match(value):
            return now_us - duration_s(value, what) * 1_000_000
        try:
            return datetime_to_us(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise InvalidInputError(f"{what} {value!r} is neither a duration back from now (e.g. 7d) nor an ISO time "
                            "(e.g. 2026-01-31 or 2026-01-31T12:00:00Z)")


def window_start(ts_us: int, size_s: int) -> int:
    """Start of the window holding ``ts_us``; windows are aligned on the Unix epoch (UTC)."""
    size = size_s * 1_000_000
    return ts_us - ts_us % size
