"""Latest status per model version, and the HTML report (plotly charts, plotly.js inlined)."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

QUALITY = ("accuracy", "auc", "f1", "mae", "rmse")
OPERATIONS = ("request_rate", "error_rate", "latency_p50", "latency_p95", "latency_p99")
DRIFT = ("psi", "ks", "jsd")


def status_rows(results: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per model version and window size, about its latest window."""
    latest: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        key = (r["model_name"], r["model_version"], r["window_size"])
        rows = latest.get(key)
        if rows is None or r["window_start"] > rows[0]["window_start"]:
            latest[key] = [r]
        elif r["window_start"] == rows[0]["window_start"]:
            rows.append(r)
    fired: dict[tuple, set[str]] = {}
    for a in alerts:
        fired.setdefault((a["model_name"], a["model_version"], a["window_end"]), set()).add(a["rule"])
    out = []
    for (name, version, size), rows in sorted(latest.items()):
        vals = {(r["check_name"], r["feature"]): r["value"] for r in rows}
        drift = [(r["value"], r["feature"], r["check_name"]) for r in rows
                 if r["check_name"] in ("psi", "jsd") and r["value"] is not None]
        worst = max(drift, default=None)
        firing = sorted(fired.get((name, version, rows[0]["window_end"]), ()))
        row = {"model_name": name, "model_version": version, "window": size, "window_start": rows[0]["window_start"],
               "window_end": rows[0]["window_end"], "requests": vals.get(("requests", None)),
               "max_drift": worst[0] if worst else None,
               "max_drift_feature": f"{worst[1]} ({worst[2]})" if worst else None}
        row.update({c: vals.get((c, None)) for c in QUALITY + OPERATIONS if (c, None) in vals})
        row["alerts"] = ", ".join(firing) or None
        row["status"] = "ALERT" if firing else "ok"
        out.append(row)
    return out


def write_html(path: Path, results: list[dict[str, Any]], alerts: list[dict[str, Any]],
               status: list[dict[str, Any]]) -> Path:
    """The report: a status table, then per model version charts of drift, quality and operations."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    parts = []
    by_version: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        by_version.setdefault((r["model_name"], r["model_version"], r["window_size"]), []).append(r)
    for (name, version, size), rows in sorted(by_version.items()):
        parts.append(f"<h2>{html.escape(name)} v{version} <small>(windows of {html.escape(size)})</small></h2>")
        for title, checks, per_feature in (("Data drift (PSI, JSD) per feature", ("psi", "jsd"), True),
                                           ("Kolmogorov-Smirnov statistic per feature", ("ks",), True),
                                           ("Prediction drift", ("prediction_psi", "prediction_ks", "prediction_jsd"), False),
                                           ("Quality", QUALITY, False),
                                           ("Requests per second and error rate", ("request_rate", "error_rate"), False),
                                           ("Latency (ms)", ("latency_p50", "latency_p95", "latency_p99"), False)):
            series: dict[str, tuple[list, list]] = {}
            for r in rows:
                if r["check_name"] in checks and r["value"] is not None:
                    label = f"{r['feature']} ({r['check_name']})" if per_feature else r["check_name"]
                    xs, ys = series.setdefault(label, ([], []))
                    xs.append(r["window_start"])
                    ys.append(r["value"])
            if not series:
                continue
            fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=label)
                             for label, (xs, ys) in sorted(series.items())])
            fig.update_layout(title=title, height=320, margin=dict(l=40, r=20, t=40, b=30))
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lakeml monitoring report</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} .ALERT{{color:#b00;font-weight:bold}}</style>
</head><body>
<h1>lakeml monitoring report</h1><p>Generated {now}.</p>
<h2>Latest status</h2>{_status_table(status)}
<h2>Alerts</h2>{_alerts_table(alerts)}
{''.join(parts)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(v))


def _status_table(status: list[dict[str, Any]]) -> str:
    if not status:
        return "<p>No monitoring results yet: run <code>lakeml monitor run</code>.</p>"
    cols = list(dict.fromkeys(k for s in status for k in s))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td class='{_fmt(s.get(c)) if c == 'status' else ''}'>{_fmt(s.get(c))}</td>"
                                    for c in cols) + "</tr>" for s in status)
    return f"<table><tr>{head}</tr>{body}</table>"


def _alerts_table(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<p>No alerts recorded.</p>"
    body = "".join(f"<tr><td>{_fmt(a['fired_at'])}</td><td style='text-align:left'>{_fmt(a['message'])}</td></tr>"
                   for a in alerts[:200])
    return f"<table><tr><th>fired at</th><th>alert</th></tr>{body}</table>"
