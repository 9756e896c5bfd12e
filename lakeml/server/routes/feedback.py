"""``POST /api/v1/feedback``: ground truth for logged predictions (``lake.log_feedback`` / ``log_feedbacks``).

Body: one label ``{"request_id": "...", "label": 1, "row_index": 0}`` (``row_index`` optional: every row
of the request), or many ``{"feedback": [{...}, ...]}``. Scope ``write``; the label is recorded as the
token's user. Answers ``{"logged": N}`` once the rows are committed (a later read sees them).
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["monitoring"])


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(..., description="predictions.request_id (the X-Request-Id of the scoring request)")
    label: Any = Field(..., description="the true value: a number, a string or a boolean")
    row_index: Optional[int] = Field(None, description="row of the request; omit for every row")


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Optional[str] = None
    label: Any = None
    row_index: Optional[int] = None
    feedback: Optional[list[FeedbackItem]] = Field(None, description="many labels at once (instead of one)")


@router.post("/feedback")
def log_feedback(body: FeedbackBody, request: Request, principal: Principal = Depends(require("write"))) -> dict:
    """Record one label or a list of them; all are checked before any is kept (400 names the bad one)."""
    lake = lake_of(request)
    single = body.request_id is not None or "label" in body.model_fields_set
    if body.feedback is not None and single:
        raise ApiError(400, "give either request_id/label/row_index or a 'feedback' list, not both",
                       code="INVALID_PARAMETER_VALUE", field="feedback")
    if body.feedback is not None:
        if not body.feedback:
            raise ApiError(400, "'feedback' is empty: send at least one {request_id, label}",
                           code="INVALID_PARAMETER_VALUE", field="feedback")
        n = lake.log_feedbacks([i.model_dump() for i in body.feedback])
    else:
        if body.request_id is None or "label" not in body.model_fields_set:
            raise ApiError(400, "a feedback needs request_id and label (or a 'feedback' list of them)",
                           code="INVALID_PARAMETER_VALUE", field="request_id" if body.request_id is None else "label")
        lake.log_feedback(body.request_id, body.label, row_index=body.row_index)
        n = 1
    lake.flush()
    return {"logged": n}
