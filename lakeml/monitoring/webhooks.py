"""POST alerts as JSON to webhook URLs (stdlib only; a failing hook is reported, never fatal)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_S = 10.0


def post(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_S) -> str:
    """POST ``payload``; returns ``"200"`` (the HTTP status) or ``"error: ..."``."""
    body = json.dumps(payload, default=str).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "lakeml-monitor"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URLs come from the rules file
            return str(resp.status)
    except urllib.error.HTTPError as e:
        return str(e.code)
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"error: {getattr(e, 'reason', e)}"
