"""What the ``/api/v1`` routers share: JSON of records, Arrow bodies, page tokens, the write door."""

from __future__ import annotations

import base64
import json
import math
from datetime import date, datetime
from enum import Enum
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from lakeml.server.api_v1.ingest import BATCH_HEADER, RETRY_HEADER, TIME_HEADER, Ingest, check_batch_id
from lakeml.server.deps import lake_of
from lakeml.server.errors import ApiError

ARROW = "application/vnd.apache.arrow.stream"


def jsonable(value: Any) -> Any:
    """Plain JSON of records, datetimes (ISO 8601), enums, and non-finite floats ("nan", "inf")."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return jsonable(to_dict())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def wants_arrow(request: Request, fmt: str | None = None) -> bool:
    if fmt is not None:
        if fmt not in ("json", "arrow"):
            raise ApiError(400, f"format {fmt!r} is not supported: use 'json' or 'arrow'", field="format")
        return fmt == "arrow"
    return ARROW in request.headers.get("accept", "")


def arrow_response(table: Any) -> Response:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW)


def table_rows(table: Any) -> list[dict[str, Any]]:
    """An Arrow table as JSON-able row dicts."""
    return [jsonable(r) for r in table.to_pylist()]


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))["offset"]
        if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
            return offset
    except Exception:
        pass
    raise ApiError(400, f"page_token {token[:40]!r} is not a token this server gave out; pass the "
                        "next_page_token of the previous page, or none for the first page", field="page_token")


def ingest_of(request: Request) -> Ingest:
    return Ingest.of(request.app.state, lake_of(request))


def write_key(request: Request) -> tuple[str | None, bool]:
    """``(idempotency key, is a retry)`` of a write request."""
    key = check_batch_id(request.headers.get(BATCH_HEADER))
    retry = request.headers.get(RETRY_HEADER, "").strip().lower() not in ("", "0", "false", "no")
    return key, retry


def batch_time(request: Request) -> int | None:
    """``X-Lakeml-Batch-Time``: when the client made the batch (ms since the epoch), or None."""
    raw = request.headers.get(TIME_HEADER)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"X-Lakeml-Batch-Time {raw[:30]!r} is not an integer (milliseconds since the epoch)",
                       field="X-Lakeml-Batch-Time") from None


def duplicate_headers(duplicate: bool) -> dict[str, str]:
    return {"X-Lakeml-Duplicate": "1"} if duplicate else {}
