"""Time travel of the metadata: which snapshot of each table was current at a moment.

``as_of`` is a timestamp (an ISO string such as ``"2026-11-01T00:00:00Z"``, a
``datetime``, naive meaning UTC) or the id of a snapshot of one of the tables. A
snapshot id stands for the time that snapshot was its table's current one: the lake
is seen as it was just before that table changed again (or now, if it has not), so
the other tables' commits of the same flush are included.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterable

from lakeml.errors import InvalidInputError


def parse(as_of: Any) -> tuple[str, int]:
    """``("ts", epoch ms)`` or ``("snapshot", id)``."""
    if isinstance(as_of, bool):
        raise InvalidInputError(f"as_of={as_of!r} is neither a timestamp nor a snapshot id")
    if isinstance(as_of, int):
        return "snapshot", as_of
    if isinstance(as_of, datetime):
        dt = as_of
    elif isinstance(as_of, date):
        dt = datetime(as_of.year, as_of.month, as_of.day)
    elif isinstance(as_of, str):
        text = as_of.strip()
        if text.lstrip("-").isdigit():
            return "snapshot", int(text)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                f"as_of={as_of!r} is not an ISO timestamp or a snapshot id; use e.g. '2026-11-01T00:00:00Z' "
                "or a snapshot id from 'SELECT snapshot_id FROM lakeml.inputs'") from None
    else:
        raise InvalidInputError(f"as_of must be an ISO timestamp, a datetime or a snapshot id, not "
                                f"{type(as_of).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return "ts", int(dt.timestamp() * 1000)


def resolve_ms(as_of: Any, tables: Iterable[Any]) -> int:
    """The moment ``as_of`` stands for, in epoch milliseconds (a snapshot id is looked up in ``tables``)."""
    kind, value = parse(as_of)
    if kind == "ts":
        return value
    import time

    for tbl in tables:
        if tbl is None:
            continue
        snap = tbl.snapshot_by_id(value)
        if snap is not None:
            later = [e.timestamp_ms for e in tbl.metadata.snapshot_log if e.timestamp_ms > snap.timestamp_ms]
            return min(later) - 1 if later else int(time.time() * 1000)
    raise InvalidInputError(f"as_of={as_of!r}: no table of the lake has a snapshot with that id (it may have been "
                            "expired); pass a timestamp instead")


def snapshot_at(tbl: Any, ms: int) -> int | None:
    """The id of the snapshot of ``tbl`` that was current at ``ms`` (None: the table was empty then)."""
    if tbl is None:
        return None
    snap = tbl.snapshot_as_of_timestamp(ms)
    return snap.snapshot_id if snap is not None else None
