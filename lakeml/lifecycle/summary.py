"""The weekly management summary as one self-contained HTML page: counts per status, time to
production per project, stuck steps, and the week's activity."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lakeml.clock import datetime_to_us
from lakeml.lifecycle.process import STATUSES

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from lakeml.lifecycle.records import ProjectsState


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def weekly_html(board: "pl.DataFrame", st: "ProjectsState", now: datetime) -> str:
    """The page for the week ending at ``now``."""
    rows = board.to_dicts()
    counts = {s: 0 for s in STATUSES}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    prod = []
    for p in sorted(st.projects.values(), key=lambda p: p.name):
        if p.status == "in_production":
            prod.append([p.name, p.customer, f"{(p.status_since - p.created_at) / 86_400e6:.1f}"])
    stuck = [[r["project"], r["current_step"], r["assignee"], f"{r['days_in_step']:.1f}", r["sla_days"],
              r["blocked_by"]] for r in rows if r.get("stuck")]
    since = datetime_to_us(now - timedelta(days=7))
    moved = sorted((p.name, p.status) for p in st.projects.values() if p.status_since >= since)
    css = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
           "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
           "th{background:#f3f3f3}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Model projects: week ending "
             f"{now:%Y-%m-%d}</title><style>{css}</style></head><body>",
             f"<h1>Model projects: week ending {now:%Y-%m-%d}</h1>",
             "<h2>Projects per status</h2>",
             _table(["status", "projects"], [[s, n] for s, n in counts.items()]),
             "<h2>Time to production</h2>",
             _table(["project", "customer", "days from proposal to production"], prod),
             "<h2>Stuck steps (idle past their SLA)</h2>",
             _table(["project", "step", "assignee", "days in step", "SLA days", "blocked by"], stuck),
             "<h2>Status changes this week</h2>",
             _table(["project", "status now"], [list(m) for m in moved]),
             "<h2>All projects</h2>",
             _table(["project", "status", "customer", "step", "assignee", "days in step", "production version",
                     "monitoring"],
                    [[r["project"], r["status"], r["customer"], r["current_step"], r["assignee"],
                      r["days_in_step"], r["production_model_version"], r["monitoring_status"]] for r in rows]),
             "</body></html>"]
    return "\n".join(parts)
