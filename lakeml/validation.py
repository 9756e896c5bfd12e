"""Input rules for names and values. Each error names the value, the rule and the fix."""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from typing import Any

from lakeml.errors import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_NAME_LENGTH = 256
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_KEY = re.compile(r"[\w\-. /:]+")  # used with fullmatch: '$' would let a trailing newline through
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def utf8_text(text: str, what: str) -> str:
    """``text`` if it encodes as UTF-8; lone surrogates (``os.fsdecode`` of a non-UTF-8 file name) are refused."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(
                f"{what} {_short(text)} holds {text[e.start:e.end]!r} at position {e.start}, which is not "
                "valid Unicode (a lone surrogate, as os.fsdecode makes of a non-UTF-8 file name) and cannot be "
                "stored; decode the bytes with errors='replace' or rename the file to a UTF-8 name") from None
    return text


def utf8_escaped(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udcff`` escapes: for free text that must not be
    refused, such as the exception message that ends a FAILED run."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def validate_key(key: Any, what: str = "metric") -> str:
    """Keys: 1-250 chars of letters, digits, and _ - . / : space; no '..' segment, no leading '/'."""
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} key must be a string, got {type(key).__name__} {_short(key)}")
    if not key or not key.strip():
        raise InvalidInputError(f"{what} key is empty; give it a name such as 'loss'")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(f"{what} key {_short(key)} is {len(key)} characters long; the limit is "
                                f"{MAX_KEY_LENGTH}")
    if not _KEY.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInputError(
            f"invalid {what} key {_short(key)}: use letters, digits, and _ - . / : or space, "
            "not starting with '/' and without '..' segments (e.g. 'val/auc')")
    return key


def metric_value(value: Any, key: str) -> float:
    """A float (NaN and +/-inf are kept); bools, strings and None are refused."""
    if isinstance(value, bool) or not isinstance(value, Real):
        try:  # numpy scalars and 0-d arrays
            if hasattr(value, "item") and not isinstance(value, (str, bytes)):
                return metric_value(value.item(), key)
        except (TypeError, ValueError):
            pass
        raise InvalidInputError(f"metric {key!r} got {type(value).__name__} {_short(value)}; metric values must "
                                "be numbers (use log_param or set_tag for text)")
    try:
        return float(value)
    except OverflowError:
        raise InvalidInputError(f"metric {key!r} value {_short(value)} does not fit in a 64-bit float") from None


def step_value(step: Any, key: str = "") -> int:
    """An integer step (numpy integer scalars and integral floats are accepted; arrays are not)."""
    if isinstance(step, bool) or not isinstance(step, Integral):
        if hasattr(step, "item") and getattr(step, "ndim", 0) == 0 and not isinstance(step, (str, bytes)):
            return step_value(step.item(), key)
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        else:
            raise InvalidInputError(f"step of metric {key!r} must be one integer, got {type(step).__name__} "
                                    f"{_short(step)}; log one point per step, or pass whole series as "
                                    "columns to log_batch(metrics={'key': ..., 'value': [...], 'step': [...]})")
    step = int(step)
    if not INT64_MIN <= step <= INT64_MAX:
        raise InvalidInputError(f"step {step} of metric {key!r} is out of the 64-bit integer range")
    return step


def whole_number(value: Any, what: str, minimum: int = 0) -> int:
    """An int >= ``minimum`` (bools, floats and strings are refused), e.g. ``max_results``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got {type(value).__name__} "
                                f"{_short(value)}" + (f"; pass {what}={value.strip()}" if isinstance(value, str)
                                                      and value.strip().isdigit() else ""))
    return int(value)


def timestamp_ms(ts: Any, key: str = "") -> int:
    if (isinstance(ts, bool) or not isinstance(ts, (Integral, Real))
            or (isinstance(ts, float) and not math.isfinite(ts))):
        raise InvalidInputError(f"timestamp of {key!r} must be milliseconds since the epoch, got {_short(ts)}")
    ts = int(ts)
    if not 0 <= ts <= 253402300799999:  # year 9999
        raise InvalidInputError(f"timestamp {ts} of {key!r} is out of range; pass milliseconds since 1970")
    return ts


def param_value(value: Any, key: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        s = str(value)
    elif isinstance(value, (str, int, float, bool)) or value is None:
        s = str(value)
    elif hasattr(value, "item") and not hasattr(value, "__len__"):
        s = str(value.item())
    else:
        s = str(value)
        if len(s) > MAX_PARAM_VALUE_LENGTH or type(value).__repr__ is object.__repr__:
            raise InvalidInputError(f"param {key!r} has a value of type {type(value).__name__} that has no "
                                    "stable text form; log a string or number instead")
    if len(s) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidInputError(f"param {key!r} value is {len(s)} characters; the limit is "
                                f"{MAX_PARAM_VALUE_LENGTH} (store large values as an artifact)")
    if "\x00" in s:
        raise InvalidInputError(f"param {key!r} value contains a NUL byte")
    return utf8_text(s, f"param {key!r} value")


def tag_value(value: Any, key: str) -> str:
    if not isinstance(value, (str, int, float, bool)):
        raise InvalidInputError(f"tag {key!r} value must be a string (or a number or bool), got "
                                f"{type(value).__name__}")
    s = str(value)
    if len(s) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInputError(f"tag {key!r} value is {len(s)} characters; the limit is {MAX_TAG_VALUE_LENGTH}")
    if "\x00" in s:
        raise InvalidInputError(f"tag {key!r} value contains a NUL byte")
    return utf8_text(s, f"tag {key!r} value")


def validate_name(name: Any, what: str = "experiment") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} name must be a non-empty string, got {_short(name)}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"{what} name is {len(name)} characters; the limit is {MAX_NAME_LENGTH}")
    if any(ord(c) < 32 for c in name):
        raise InvalidInputError(f"{what} name {_short(name)} contains control characters")
    return utf8_text(name, f"{what} name")


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidInputError(f"run id {_short(run_id)} is not a lakeml run id (32 lowercase hex characters); "
                                "copy it from run.id or 'lakeml runs list'")
    return run_id
