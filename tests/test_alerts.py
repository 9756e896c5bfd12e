"""Alert rules: YAML parsing with clear errors, firing over consecutive windows, webhooks received by a
real HTTP server on loopback, the alerts table, exit codes of `lakeml monitor run`, and the report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app
from lakeml.errors import InvalidInputError
from lakeml.monitoring.rules import load_rules
from tests.monitoring_seed import (Receiver, features, hour, prediction_rows, train_and_register, training_table,
                                   truth)

RULES = """
rules:
  - name: feature_drift
    check: psi
    op: ">"
    threshold: 0.2
    feature: any
    for_windows: 2
  - name: drift_3_windows
    check: psi
    op: ">"
    threshold: 0.2
    for_windows: 3
  - name: auc_low
    when: auc < 0.8
  - name: slow
    check: latency_p99
    op: ">"
    threshold: 1000
"""


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def alerted(tmp_path_factory):
    """clf: window 0 like training, windows 1 and 2 with x1 shifted; labels everywhere."""
    wh = tmp_path_factory.mktemp("alerts") / "wh"
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2, commit_deadline=30)
    rng = np.random.default_rng(11)
    data, snap = training_table(lake, rng, n=1500)
    clf, v = train_and_register(lake, data, snap, "clf")
    for k in range(3):
        f = features(rng, 400, shift=2.5 if k else 0.0)
        rows, ids = prediction_rows(clf, "clf", v, f, hour(k), prefix=f"w{k}-")
        lake.committer.buffer("predictions").extend(rows)
        y = truth(f["x1"], f["x2"], f["x3"])
        lake.log_feedbacks([(ids[i], int(y[i]), i % 5) for i in range(400)])
    lake.flush()
    yield lake, wh
    lake.close()


def test_rules_parse_from_yaml():
    rules, hooks = load_rules(RULES)
    assert [r.name for r in rules] == ["feature_drift", "drift_3_windows", "auc_low", "slow"]
    assert rules[1].feature == "any" and rules[2].check == "auc" and rules[2].op == "<" and rules[2].threshold == 0.8
    assert rules[0].condition() == "psi > 0.2 on any feature for 2 windows" and hooks == []
    rules, hooks = load_rules([{"name": "x", "when": "error_rate >= 0.05"}])
    assert rules[0].feature is None and rules[0].for_windows == 1


@pytest.mark.parametrize("text, message", [
    ("rules: [", "is not valid YAML"),
    ("rules: []", "non-empty list of rules"),
    ("- check: psi\n  op: '>'\n  threshold: 1", "rule #1 needs a 'name'"),
    ("- name: a\n  check: pis\n  op: '>'\n  threshold: 1", "rule 'a': check 'pis' is not a monitoring check"),
    ("- name: a\n  check: psi\n  op: '=>'\n  threshold: 1", "rule 'a': op '=>' must be one of"),
    ("- name: a\n  check: psi\n  op: '>'\n  threshold: high", "rule 'a': threshold 'high' must be a number"),
    ("- name: a\n  check: auc\n  op: '<'\n  threshold: 0.8\n  feature: x1", "rule 'a': check 'auc' is model-level"),
    ("- name: a\n  check: psi\n  op: '>'\n  threshold: 1\n  for_windows: 0", "rule 'a': for_windows 0"),
    ("- name: a\n  check: psi\n  op: '>'\n  threshold: 1\n  treshold: 2", "rule 'a' has unknown keys ['treshold']"),
    ("- name: a\n  when: auc lower than 0.8", "rule 'a': when 'auc lower than 0.8' must read"),
    ("- {name: a, when: auc < 0.8}\n- {name: a, when: f1 < 0.8}", "rule names must be unique; repeated: a"),
    ("webhooks: [ftp://x]\nrules: [{name: a, when: auc < 0.8}]", "webhooks must be a list of http"),
])
def test_bad_rules_name_the_rule_and_the_fix(text, message):
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_rules(text)


def test_rules_fire_over_consecutive_windows_and_webhooks_receive_them_once(alerted, receiver, tmp_path):
    lake, _ = alerted
    res = lake.monitoring.run(window="1h", rules=RULES, webhooks=[receiver.url])
    assert len(res.computed) == 3
    fired = {(a.rule, a.feature) for a in res.alerts}
    assert ("feature_drift", "x1") in fired and ("auc_low", None) in fired
    assert ("feature_drift", "x2") not in fired and ("feature_drift", "x3") not in fired
    assert not any(r in ("drift_3_windows", "slow") for r, _ in fired)  # window 0 did not drift; latency is fine
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["source"] == "lakeml" and {(a["rule"], a["feature"]) for a in body["alerts"]} == fired
    x1 = next(a for a in body["alerts"] if a["feature"] == "x1")
    assert x1["check"] == "psi" and x1["value"] > 0.2 and x1["window_start"].startswith("2026-01-05T02:00")
    rows = lake.sql("SELECT rule, feature, value, threshold, webhooks FROM lakeml.alerts").rows()
    assert {(r[0], r[1]) for r in rows} == fired and all(json.loads(r[4])[0]["status"] == "204" for r in rows)

    again = lake.monitoring.run(window="1h", rules=RULES, webhooks=[receiver.url])
    assert {(a.rule, a.feature) for a in again.alerts} == fired and not any(a.new for a in again.alerts)
    assert len(receiver.bodies) == 1  # each alert is sent once
    assert lake.sql("SELECT count(*) AS n FROM lakeml.alerts")["n"][0] == len(rows)


def test_cli_run_exits_2_on_alerts_and_report_writes_offline_html(alerted, tmp_path):
    lake, wh = alerted
    lake.flush()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    runner = CliRunner()
    r = runner.invoke(app, ["monitor", "run", "-w", str(wh), "--window", "1h", "--rules", str(rules)])
    assert r.exit_code == 2, r.output
    assert "ALERT feature_drift: clf v1 feature x1: psi = " in r.stdout
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("rules:\n  - {name: slow, when: latency_p99 > 1000}\n")
    r = runner.invoke(app, ["monitor", "run", "-w", str(wh), "--rules", str(quiet), "-o", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["alerts"] == []
    r = runner.invoke(app, ["monitor", "run", "-w", str(wh), "--rules", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 1 and "alert rules file" in r.stderr and "does not exist" in r.stderr

    out = tmp_path / "report" / "monitoring.html"
    r = runner.invoke(app, ["monitor", "report", "-w", str(wh), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "clf" in r.stdout and "ALERT" in r.stdout and f"report written to {out}" in r.stdout
    html = out.read_text()
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in html  # plotly.js inlined from the plotly package...
    tags = re.findall(r"<script\b[^>]*>", html.replace(get_plotlyjs(), ""))
    assert len(tags) > 3 and not [t for t in tags if "src=" in t]  # ...and nothing loaded from a CDN
    assert "Plotly.newPlot" in html and len(html) > 1_000_000
    assert "Data drift (PSI, JSD) per feature" in html and "x1 (psi)" in html and "feature_drift" in html
    r = runner.invoke(app, ["monitor", "report", "-w", str(wh), "--json"])
    status = json.loads(r.stdout)
    assert [(s["model_name"], s["status"]) for s in status] == [("clf", "ALERT")]
    assert status[0]["max_drift"] > 0.2 and "accuracy" in status[0]


def test_a_failing_webhook_is_recorded_not_fatal(alerted):
    lake, _ = alerted
    lake.monitoring.run(window="1h")
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    alerts = lake.monitoring.evaluate("- {name: errors_or_drift, check: ks, op: '>', threshold: 0.3, feature: x1}",
                                      window="1h", webhooks=[dead])
    assert [(a.rule, a.feature, a.new) for a in alerts] == [("errors_or_drift", "x1", True)]
    assert alerts[0].webhooks[0][0] == dead and alerts[0].webhooks[0][1].startswith("error: ")
    got = lake.sql("SELECT webhooks FROM lakeml.alerts WHERE rule = 'errors_or_drift'")["webhooks"][0]
    assert json.loads(got)[0]["status"].startswith("error: ")
