"""Webhook notifications of the lifecycle, configured in YAML.

```yaml
webhooks:
  - url: https://chat.example.com/hooks/models
    events: [task_ready, step_idle, status_changed]   # default: all three
    roles: [validator, customer]                      # task events of these roles only (default: all)
    headers: {Authorization: "Bearer ..."}
    timeout: 5
```

Each notification is one JSON POST: ``{"event", "project", "project_id", "status", "task", "task_name",
"role", "assignee", "users", "days_idle", "sla_days", "status_before", "actor", "time"}``. A failed
delivery is logged, never raised: the transition it reports is already committed.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeml.errors import ConfigError

log = logging.getLogger("lakeml.lifecycle")

EVENTS = ("task_ready", "step_idle", "status_changed")


@dataclass(frozen=True)
class Webhook:
    url: str
    events: tuple[str, ...] = EVENTS
    roles: tuple[str, ...] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0

    def wants(self, payload: dict[str, Any]) -> bool:
        if payload["event"] not in self.events:
            return False
        role = payload.get("role")
        return self.roles is None or role is None or role in self.roles


def load_webhooks(path: str | Path | None) -> list[Webhook]:
    """The webhooks of a YAML file (none when ``path`` is None)."""
    if path is None:
        return []
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"lifecycle notification config {str(p)!r} does not exist; create it or unset "
                          "LAKEML_NOTIFICATIONS / lakeml.lifecycle.notifications")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    out = []
    for i, w in enumerate(doc.get("webhooks") or []):
        if not isinstance(w, dict) or not str(w.get("url", "")).startswith(("http://", "https://")):
            raise ConfigError(f"{p}: webhooks[{i}] needs a url starting with http:// or https://, got {w!r}")
        events = tuple(w.get("events") or EVENTS)
        bad = [e for e in events if e not in EVENTS]
        if bad:
            raise ConfigError(f"{p}: webhooks[{i}]: unknown event(s) {', '.join(bad)}; use {', '.join(EVENTS)}")
        roles = tuple(w["roles"]) if w.get("roles") else None
        out.append(Webhook(w["url"], events, roles, {str(k): str(v) for k, v in (w.get("headers") or {}).items()},
                           float(w.get("timeout", 5.0))))
    return out


class Notifier:
    """Sends notifications to the configured webhooks; keeps the last ones sent (``sent``)."""

    def __init__(self, webhooks: list[Webhook]):
        self.webhooks = webhooks
        self.sent: list[dict[str, Any]] = []
        self.failures = 0

    def send(self, payload: dict[str, Any]) -> int:
        """POST ``payload`` to every webhook that wants it; returns how many accepted it."""
        ok = 0
        body = json.dumps(payload, default=str).encode("utf-8")
        for hook in self.webhooks:
            if not hook.wants(payload):
                continue
            req = urllib.request.Request(hook.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **hook.headers})
            try:
                with urllib.request.urlopen(req, timeout=hook.timeout) as resp:  # noqa: S310 - configured URL
                    resp.read()
                ok += 1
            except Exception as e:  # the transition is committed; a lost notification is only logged
                self.failures += 1
                log.warning("lakeml: webhook %s refused %s notification: %s", hook.url, payload["event"], e)
        self.sent.append(payload)
        del self.sent[:-100]
        return ok
