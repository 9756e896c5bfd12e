"""The portal's monitoring page (issue 12): the same data as ``lakeml monitor report``, live. The latest
status per model version (``lake.monitoring.status``), drift per feature over the windows as plotly
charts (from ``lake.monitoring.results``, the ``lakeml.monitoring_latest`` view), quality and operations
over time, and the recorded alerts (``lake.monitoring.alerts``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from fastapi import APIRouter, Depends, Query, Request

from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.portal.pages import HERE, add_page

router = APIRouter(include_in_schema=False)
API = "/portal/api"
MAX_ALERTS = 200  # newest alerts the page lists
# chart groups, in page order: (id, title, checks, one series per feature?)
CHARTS = (("drift", "Data drift per feature (PSI; JSD for categoricals)", ("psi", "jsd"), True),
          ("ks", "Kolmogorov-Smirnov statistic per feature", ("ks",), True),
          ("prediction", "Prediction drift", ("prediction_psi", "prediction_ks", "prediction_jsd"), False),
          ("quality", "Quality (once labels arrive)", ("accuracy", "auc", "f1", "mae", "rmse"), False),
          ("operations", "Requests per second and error rate", ("request_rate", "error_rate"), False),
          ("latency", "Latency (ms)", ("latency_p50", "latency_p95", "latency_p99"), False))

add_page("/monitoring", "Monitoring", "monitoring.html", nav="Monitoring", templates_dir=HERE / "templates")


def _iso(v: Any) -> Any:
    return v.astimezone(timezone.utc).isoformat() if isinstance(v, datetime) else v


def _series(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model version and window size, per chart: one series (x: window starts, y: values) per
    feature and check (drift) or per check (the others)."""
    groups: dict[tuple, dict[str, dict[str, tuple[list, list]]]] = {}
    where = {c: (cid, per_feature) for cid, _, checks, per_feature in CHARTS for c in checks}
    for r in results:
        if r["check_name"] not in where or r["value"] is None:
            continue
        cid, per_feature = where[r["check_name"]]
        label = f"{r['feature']} ({r['check_name']})" if per_feature else r["check_name"]
        key = (r["model_name"], r["model_version"], r["window_size"])
        xs, ys = groups.setdefault(key, {}).setdefault(cid, {}).setdefault(label, ([], []))
        xs.append(_iso(r["window_start"]))
        ys.append(r["value"])
    out = []
    for (name, version, size), charts in sorted(groups.items()):
        out.append({"model_name": name, "model_version": version, "window": size,
                    "charts": [{"id": cid, "title": title,
                                "series": [{"name": lbl, "x": xs, "y": ys}
                                           for lbl, (xs, ys) in sorted(charts[cid].items())]}
                               for cid, title, _, _ in CHARTS if cid in charts]})
    return out


@router.get(API + "/monitoring")
def monitoring(request: Request, model: Optional[str] = None, window: Optional[str] = None,
               alerts: int = Query(MAX_ALERTS, ge=0, le=10_000),
               _: Principal = Depends(require("read"))) -> dict[str, Any]:
    """Latest status per model version, chart series per model version and window size, recent alerts,
    and the models that have results (for the page's filter)."""
    from lakeml.monitoring.report import status_rows

    mon = lake_of(request).monitoring
    everything = mon.results(None, window=window or None)  # the same rows `lakeml monitor report` reads
    results = [r for r in everything if not model or r["model_name"] == model]
    recorded = mon.alerts(model or None)
    status = [{k: _iso(v) for k, v in s.items()} for s in status_rows(results, recorded)]
    models = sorted({r["model_name"] for r in everything})
    return {"status": status, "versions": _series(results),
            "alerts": [{k: _iso(v) for k, v in a.items() if k != "webhooks"} for a in recorded[:alerts]],
            "alert_count": len(recorded), "models": models,
            "filters": {"model": model or None, "window": window or None}}
