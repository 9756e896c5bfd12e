"""``lake.monitoring``: feedback, the window checks, alerts, and the data of the report."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from lakeml.clock import Clock, now_us, us_to_datetime
from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.monitoring import windows as w
from lakeml.monitoring.feedback import bulk_rows, feedback_row

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.monitoring.rules import Rule
    from lakeml.query.client import QueryClient
    from lakeml.registry.deployments import Deployments
    from lakeml.storage.committer import Committer
    from lakeml.tracking.inputs import RunInputs


@dataclass(frozen=True)
class Alert:
    """A rule that holds for a model version (and feature) over its last ``for_windows`` windows."""

    rule: str
    model_name: str
    model_version: int
    check_name: str
    feature: str | None
    op: str
    threshold: float
    value: float | None
    for_windows: int
    window_start: int  # µs
    window_end: int
    message: str
    new: bool = True  # False: recorded (and sent) by an earlier pass
    webhooks: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "model_name": self.model_name, "model_version": self.model_version,
                "check": self.check_name, "feature": self.feature, "op": self.op, "threshold": self.threshold,
                "value": self.value, "for_windows": self.for_windows,
                "window_start": us_to_datetime(self.window_start).isoformat(),
                "window_end": us_to_datetime(self.window_end).isoformat(), "message": self.message}


@dataclass
class MonitorResult:
    """What one ``run`` did: windows computed and skipped, notes, rows written, and the firing alerts."""

    computed: list[tuple[str, int, int]] = field(default_factory=list)  # (model, version, window_start µs)
    skipped: list[tuple[str, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        win = lambda t: {"model_name": t[0], "model_version": t[1],  # noqa: E731
                         "window_start": us_to_datetime(t[2]).isoformat()}
        return {"computed": [win(t) for t in self.computed], "skipped": [win(t) for t in self.skipped],
                "notes": self.notes, "rows": self.rows, "alerts": [a.to_dict() for a in self.alerts]}


MIN_ROWS = 100  # scored rows a window needs for drift checks


class Monitoring:
    """Ground truth (``feedback``), checks per window (``monitoring``) and alerts (``alerts``)."""

    def __init__(self, committer: "Committer", query: "QueryClient",
                 deployments: "Deployments", inputs: "RunInputs", *, clock: Clock = now_us,
                 before_read: Callable[[], None] = lambda: None, user: Callable[[], str | None] | None = None):
        self.committer = committer
        self.query = query
        self.deployments = deployments
        self.inputs = inputs
        self.clock = clock
        self.before_read = before_read
        if user is None:
            from lakeml.tracking.runinfo import current_user as user
        self.user = user

    # -- feedback -----------------------------------------------------------------------------
    def log_feedback(self, request_id: str, label: Any, *, row_index: int | None = None) -> None:
        """Record the true ``label`` of a logged prediction (``predictions.request_id``; ``row_index``: the
        row of a multi-row request, None for every row). A later label for the same row replaces it."""
        self.committer.buffer("feedback").add(feedback_row(request_id, label, row_index, self.clock(), self.user()))

    def log_feedbacks(self, rows: Iterable[Any]) -> int:
        """Record many labels: mappings ``{request_id, label, row_index?}`` or tuples
        ``(request_id, label[, row_index])``. All are checked before any is kept; returns how many."""
        out = bulk_rows(rows, self.clock(), self.user())
        self.committer.buffer("feedback").extend(out)
        return len(out)

    # -- checks -------------------------------------------------------------------------------
    def run(self, model: str | None = None, *, window: str = "1h", since: Any = None, until: Any = None,
            rules: Any = None, webhooks: Iterable[str] = (), notify: bool = True,
            min_rows: int = MIN_ROWS) -> MonitorResult:
        """Compute every complete window (aligned on the epoch, ending by ``until``, default now) of each
        model version that has predictions since ``since`` (default: all), then evaluate ``rules``.

        Idempotent per window: a window already in ``monitoring`` is skipped, unless labels arrived for
        it since; then it is computed again and the new computation replaces the old one in the view
        ``lakeml.monitoring_latest``. ``rules``: a YAML path/text or parsed rules (see
        :mod:`lakeml.monitoring.rules`); firing alerts are recorded in ``alerts`` and POSTed to the
        webhooks (each alert once). Drift is computed for windows with at least ``min_rows`` scored
        rows (fewer make PSI noise); quality and operations for every window.
        """
        from lakeml.monitoring.rules import load_rules

        size_s = w.duration_s(window)
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
            raise InvalidInputError(f"min_rows {min_rows!r} must be an integer >= 0")
        now = self.clock()
        since_us = w.time_us(since, now, "since")
        if since_us is not None:  # whole windows only: from the start of the window holding `since`
            since_us = w.window_start(since_us, size_s)
        until_us = w.time_us(until, now, "until") if until is not None else now
        parsed: list[Rule] = []
        hooks = list(webhooks)
        if rules is not None:
            parsed, more = load_rules(rules)
            hooks += [u for u in more if u not in hooks]
        result = MonitorResult()
        versions = self._versions(model, since_us)
        if not versions:
            result.notes.append("no logged predictions" + (f" of {model}" if model else "")
                                + (" since then" if since_us is not None else ""))
        for name, version in versions:
            self._run_version(name, version, window, size_s, since_us, until_us, min_rows, result)
        self.committer.flush()
        if parsed:
            result.alerts = self.evaluate(parsed, window=window, model=model, webhooks=hooks, notify=notify)
        return result

    def _versions(self, model: str | None, since_us: int | None) -> list[tuple[str, int]]:
        self.before_read()
        sql = ("SELECT DISTINCT model_name, model_version FROM lakeml.predictions "
               "WHERE model_name IS NOT NULL AND model_version IS NOT NULL")
        params: list[Any] = []
        if model is not None:
            params.append(model)
            sql += f" AND model_name = ${len(params)}"
        if since_us is not None:
            params.append(us_to_datetime(since_us))
            sql += f" AND ts >= ${len(params)}"
        rows = self.query.engine.rows(sql + " ORDER BY 1, 2", params, tables=["predictions"])[1]
        if model is not None and not rows and since_us is None:
            raise NotFoundError(f"no logged predictions of model {model!r}; serve it with inference logging on "
                                "(lakeml models serve), or check the name")
        return [(r[0], int(r[1])) for r in rows]

    def _run_version(self, name: str, version: int, window: str, size_s: int, since_us: int | None,
                     until_us: int, min_rows: int, result: MonitorResult) -> None:
        from lakeml.monitoring.checks import WindowChecker
        from lakeml.monitoring.reference import load_reference

        eng = self.query.engine
        lo, hi = us_to_datetime(since_us if since_us is not None else 0), us_to_datetime(until_us)
        preds = eng.arrow("SELECT * FROM lakeml.predictions WHERE model_name = $1 AND model_version = $2 "
                          "AND ts >= $3 AND ts < $4", [name, version, lo, hi], tables=["predictions"])
        ts = [t for t in preds.column("ts").cast("int64").to_pylist() if t is not None]
        starts = sorted({w.window_start(t, size_s) for t in ts})
        starts = [s for s in starts if s + size_s * 1_000_000 <= until_us]
        if len(starts) > w.MAX_WINDOWS:
            raise InvalidInputError(f"{len(starts)} windows of {window} for {name} version {version}; the limit is "
                                    f"{w.MAX_WINDOWS} per pass: pass a larger --window or a later --since")
        if not starts:
            result.notes.append(f"{name} v{version}: no complete {window} window yet")
            return
        done = self._labeled_counts(name, version, window)
        fb = eng.arrow("SELECT * FROM lakeml.feedback WHERE request_id IN (SELECT request_id FROM "
                       "lakeml.predictions WHERE model_name = $1 AND model_version = $2 AND ts >= $3 AND ts < $4)",
                       [name, version, lo, hi], tables=["feedback", "predictions"])
        checker = WindowChecker(preds, fb)
        buf = self.committer.buffer("monitoring")
        try:
            for start in starts:
                end = start + size_s * 1_000_000
                labeled = checker.select_window(start, end)
                if start in done and done[start] == labeled:
                    result.skipped.append((name, version, start))
                    continue
                if checker.ref is None:  # the first window to compute: read the training snapshot now
                    checker.set_reference(load_reference(self.deployments, self.inputs, name, version))
                    if checker.ref.note:
                        result.notes.append(checker.ref.note)
                    checker.select_window(start, end)
                ref = checker.ref
                cid, at = uuid.uuid4().hex, self.clock()
                rows = [(name, version, window, start, end, c.check_name, c.feature, c.value, c.n, ref.name, cid, at)
                        for c in checker.run_checks(size_s, min_rows)]
                buf.extend(rows)
                result.rows += len(rows)
                result.computed.append((name, version, start))
        finally:
            checker.close()

    def _labeled_counts(self, name: str, version: int, window: str) -> dict[int, int]:
        """Window start (µs) -> labeled rows, of the windows already computed."""
        _, rows = self.query.engine.rows(
            "SELECT window_start, value FROM lakeml.monitoring_latest WHERE model_name = $1 AND model_version = $2 "
            "AND window_size = $3 AND check_name = 'labeled'", [name, version, window], tables=["monitoring"])
        return {int(r[0].timestamp() * 1_000_000): int(r[1] or 0) for r in rows}

    # -- alerts -------------------------------------------------------------------------------
    def evaluate(self, rules: Any, *, window: str = "1h", model: str | None = None, webhooks: Iterable[str] = (),
                 notify: bool = True) -> list[Alert]:
        """Alerts of ``rules`` over the computed windows of size ``window``: a rule fires for a model version
        (and feature) when it holds in each of the version's last ``for_windows`` windows. New alerts are
        recorded in ``alerts`` and, with ``notify``, POSTed to ``webhooks`` as one JSON payload per hook."""
        from lakeml.monitoring.rules import Rule, load_rules

        hooks = list(webhooks)
        if not (isinstance(rules, list) and all(isinstance(r, Rule) for r in rules)):
            rules, more = load_rules(rules)
            hooks += [u for u in more if u not in hooks]
        w.duration_s(window)
        self.before_read()
        depth = max(r.for_windows for r in rules)  # only the last windows of each version matter
        where = "window_size = $1" + (" AND model_name = $3" if model is not None else "")
        sql = ("SELECT model_name, model_version, window_start, window_end, check_name, feature, value FROM ("
               "SELECT *, dense_rank() OVER (PARTITION BY model_name, model_version ORDER BY window_start DESC) AS age "
               f"FROM lakeml.monitoring_latest WHERE {where}) WHERE age <= $2")
        params: list[Any] = [window, depth] + ([model] if model is not None else [])
        _, rows = self.query.engine.rows(sql, params, tables=["monitoring"])
        by_version: dict[tuple[str, int], dict[int, list[tuple]]] = {}
        for r in rows:
            by_version.setdefault((r[0], int(r[1])), {}).setdefault(_us(r[2]), []).append(r)
        seen = self._recorded_alerts()
        out: list[Alert] = []
        for (name, version), wins in sorted(by_version.items()):
            starts = sorted(wins, reverse=True)
            for rule in rules:
                if rule.model is not None and rule.model != name:
                    continue
                out += self._fire(rule, name, version, [wins[s] for s in starts[:rule.for_windows]], seen)
        fresh = [a for a in out if a.new]
        if fresh and notify and hooks:
            from lakeml.monitoring.webhooks import post

            payload = {"source": "lakeml", "kind": "monitoring_alerts", "alerts": [a.to_dict() for a in fresh]}
            sent = tuple((u, post(u, payload)) for u in hooks)
            fresh = [replace(a, webhooks=sent) for a in fresh]
            out = [a for a in out if not a.new] + fresh
        at = self.clock()
        self.committer.buffer("alerts").extend(
            (uuid.uuid4().hex, at, a.rule, a.model_name, a.model_version, a.check_name, a.feature, a.op, a.threshold,
             a.value, a.for_windows, a.window_start, a.window_end, a.message,
             json.dumps([{"url": u, "status": s} for u, s in a.webhooks]) if a.webhooks else None)
            for a in fresh)
        self.committer.flush()
        return sorted(out, key=lambda a: (a.model_name, a.model_version, a.rule, a.feature or ""))

    def _fire(self, rule: "Rule", name: str, version: int, last: list[list[tuple]], seen: set) -> list[Alert]:
        if len(last) < rule.for_windows:
            return []
        per_window: list[dict[str | None, float | None]] = [
            {r[5]: r[6] for r in rows if r[4] == rule.check} for rows in last]
        keys = sorted(per_window[0], key=lambda k: k or "") if rule.feature == "any" else [rule.feature]
        alerts = []
        for key in keys:
            if not all(key in vals and rule.holds(vals[key]) for vals in per_window):
                continue
            latest = last[0][0]
            start, end = _us(latest[2]), _us(latest[3])
            value = per_window[0][key]
            on = f" feature {key}" if key is not None else ""
            span = f" for the last {rule.for_windows} windows" if rule.for_windows > 1 else ""
            msg = (f"{rule.name}: {name} v{version}{on}: {rule.check} = {value:.4g} {rule.op} {rule.threshold:g}"
                   f"{span} (window {us_to_datetime(start):%Y-%m-%d %H:%M:%S} to {us_to_datetime(end):%H:%M:%S} UTC)")
            new = (rule.name, name, version, key, end) not in seen
            alerts.append(Alert(rule.name, name, version, rule.check, key, rule.op, rule.threshold, value,
                                rule.for_windows, start, end, msg, new))
        return alerts

    def _recorded_alerts(self) -> set[tuple]:
        _, rows = self.query.engine.rows("SELECT rule, model_name, model_version, feature, window_end FROM lakeml.alerts",
                                         tables=["alerts"])
        return {(r[0], r[1], int(r[2]), r[3], _us(r[4])) for r in rows}

    # -- reading results ------------------------------------------------------------------------
    def results(self, model: str | None = None, *, window: str | None = None) -> list[dict[str, Any]]:
        """Current check results (``lakeml.monitoring_latest``), oldest window first: the data of the
        report and of the portal's monitoring page."""
        self.before_read()
        sql = ("SELECT model_name, model_version, window_size, window_start, window_end, check_name, feature, value, n, "
               "reference, computed_at FROM lakeml.monitoring_latest WHERE true")
        params: list[Any] = []
        for col, val in (("model_name", model), ("window_size", window)):
            if val is not None:
                params.append(val)
                sql += f" AND {col} = ${len(params)}"
        cols, rows = self.query.engine.rows(sql + " ORDER BY model_name, model_version, window_start, check_name, "
                                                  "feature", params, tables=["monitoring"])
        return [dict(zip(cols, r)) for r in rows]

    def alerts(self, model: str | None = None) -> list[dict[str, Any]]:
        """Recorded alerts, newest first."""
        self.before_read()
        sql, params = "SELECT * FROM lakeml.alerts", []
        if model is not None:
            sql, params = sql + " WHERE model_name = $1", [model]
        cols, rows = self.query.engine.rows(sql + " ORDER BY fired_at DESC", params, tables=["alerts"])
        return [dict(zip(cols, r)) for r in rows]

    def status(self, model: str | None = None) -> list[dict[str, Any]]:
        """Latest status per model version: its latest window, the largest drift and which feature,
        quality and operations values, and the alerts recorded for that window."""
        from lakeml.monitoring.report import status_rows

        return status_rows(self.results(model), self.alerts(model))

    def report(self, path: str | os.PathLike, model: str | None = None) -> Path:
        """Write an HTML report (plotly charts, plotly.js inlined: no network needed) to ``path``."""
        from lakeml.monitoring.report import write_html

        return write_html(Path(path), self.results(model), self.alerts(model), self.status(model))


def _us(t: Any) -> int:
    return int(t.timestamp() * 1_000_000)
