"""Token authentication for ``lakeml server`` (placeholder: anonymous admin until tokens land)."""

from __future__ import annotations

from typing import Any

from lakeml.server.deps import Principal
from lakeml.server.settings import ServerSettings


class TokenAuth:
    """Checks a request's token. Without tokens configured every caller is an anonymous admin."""

    def __init__(self, required: bool = False):
        self.required = required

    @classmethod
    def for_lake(cls, lake: Any, settings: ServerSettings) -> "TokenAuth":
        return cls(required=bool(settings.auth_required))

    def authenticate(self, token: str | None) -> Principal:
        from lakeml.tracking.runinfo import current_user

        return Principal(name=current_user() or "anonymous", scope="admin")
