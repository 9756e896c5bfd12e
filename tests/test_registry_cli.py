"""``lakeml models ...``: list, show, register, alias, deploy, retire, lineage, events, gates, tag;
text and JSON; bad input is one line on stderr with exit code 1."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app


def invoke(wh, *args: str):
    return CliRunner().invoke(app, ["models", *args, "--warehouse", str(wh.path)], catch_exceptions=False)


def ok(wh, *args: str) -> str:
    res = invoke(wh, *args)
    assert res.exit_code == 0, res.output
    return res.stdout


def fails(wh, *args: str, needle: str) -> None:
    res = invoke(wh, *args)
    assert res.exit_code == 1, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in res.output
    assert needle in err, err


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """A warehouse with one run that logged a model, a metric and an input file."""
    wh = tmp_path_factory.mktemp("cli") / "wh"
    X, y = load_iris(return_X_y=True)
    with lakeml.connect(warehouse=wh) as lake:
        run = lake.create_run("iris", run_name="logreg")
        lake.log_params(run.id, {"C": 1.0})
        lake.log_metric(run.id, "val_auc", 0.91)
        data = wh.parent / "train.csv"
        data.write_text("a,b\n1,2\n")
        lake.log_input(run.id, path=data)
        lake.log_model(run.id, LogisticRegression(max_iter=300).fit(X, y), "model")
        lake.set_terminated(run.id, "FINISHED")
    return SimpleNamespace(path=wh, run_id=run.id)


def test_models_workflow(wh):
    run_id = wh.run_id
    assert "(none)" in ok(wh, "list")
    out = ok(wh, "register", "churn", "--run-id", run_id, "--description", "first cut", "--tag", "team=growth")
    assert "registered models:/churn/1 (flavor sklearn" in out
    mv = json.loads(ok(wh, "register", "churn", "--run-id", run_id, "-o", "json"))
    assert mv["version"] == 2 and mv["model_uri"] == "models:/churn/2"
    assert "churn@champion -> version 2" in ok(wh, "alias", "churn", "champion", "2")
    assert "runs in prod/scoring-api 2.4.1" in ok(wh, "deploy", "churn", "2", "--env", "prod", "--service",
                                                  "scoring-api", "--service-version", "2.4.1")
    listed = json.loads(ok(wh, "list", "-o", "json"))
    assert listed[0]["name"] == "churn" and listed[0]["latest_version"] == 2
    assert listed[0]["aliases"] == "champion=2" and listed[0]["deployed"] == "prod:v2"
    text = ok(wh, "list")
    assert "churn" in text and "champion=2" in text
    shown = json.loads(ok(wh, "show", "churn", "-o", "json"))
    assert [v["version"] for v in shown["versions"]] == [1, 2] and shown["aliases"] == {"champion": 2}
    assert "first cut" in ok(wh, "show", "churn")
    one = json.loads(ok(wh, "show", "churn@champion", "-o", "json"))
    assert one["version"] == 2 and one["deployments"][0]["environment"] == "prod"
    assert "model_uri" in ok(wh, "show", "churn/1") and "team" in ok(wh, "show", "churn/1")
    lin = json.loads(ok(wh, "lineage", "churn@champion", "-o", "json"))
    assert lin["run_id"] == run_id and lin["params"] == {"C": "1.0"} and lin["inputs"][0]["kind"] == "file"
    assert "val_auc" in ok(wh, "lineage", "churn/2")
    ev = json.loads(ok(wh, "events", "churn", "-o", "json"))
    assert [e["event_type"] for e in ev] == ["model_created", "version_registered", "version_registered",
                                             "alias_set", "deployed"]
    retired = json.loads(ok(wh, "retire", "churn", "--env", "prod", "--reason", "rollback", "-o", "json"))
    assert retired[0]["retire_reason"] == "rollback"
    assert "deleted alias churn@champion (was version 2)" in ok(wh, "alias", "churn", "champion", "--delete")


def test_gates_from_the_cli(wh):
    run_id = wh.run_id
    ok(wh, "register", "gated", "--run-id", run_id)
    out = ok(wh, "gates", "gated", "--min-metric", "val_auc=0.95", "--require-tag", "approved_by=alice,bob",
             "--alias", "champion")
    assert "metric val_auc >= 0.95" in out and "tag approved_by is one of alice, bob" in out
    fails(wh, "alias", "gated", "champion", "1", needle="GateError: promotion refused")
    ok(wh, "gates", "gated", "--min-metric", "val_auc=0.9", "--require-tag", "approved_by", "--alias", "champion")
    ok(wh, "tag", "gated", "1", "approved_by=carol")
    assert "gated@champion -> version 1" in ok(wh, "alias", "gated", "champion", "1")
    assert json.loads(ok(wh, "gates", "gated", "-o", "json"))["min_metrics"] == {"val_auc": 0.9}
    assert "no promotion gates" in ok(wh, "gates", "gated", "--clear")
    refusals = [e for e in json.loads(ok(wh, "events", "gated", "-o", "json")) if e["outcome"] == "refused"]
    assert len(refusals) == 1 and "val_auc" in refusals[0]["message"]


def test_trained_on_from_the_cli(wh, tmp_path):
    import pyarrow as pa

    with lakeml.connect(warehouse=wh.path) as lake:
        lake.store.catalog.create_namespace("analytics")
        tbl = lake.store.catalog.create_table("analytics.f", pa.schema([("x", pa.int64())]))
        tbl.append(pa.table({"x": [1, 2]}))
        run = lake.create_run("iris")
        lake.log_input(run.id, table="analytics.f")
        lake.log_model(run.id, lambda rows: rows, "model")
        lake.register_model("echo", run_id=run.id)
        snap = tbl.current_snapshot().snapshot_id
    rows = json.loads(ok(wh, "lineage", "--table", "analytics.f", "--snapshot-id", str(snap), "-o", "json"))
    assert [(r["model_name"], r["version"], r["snapshot_id"]) for r in rows] == [("echo", 1, snap)]
    assert "models:/echo/1" in ok(wh, "lineage", "--table", "analytics.f")


def test_cli_bad_input(wh):
    if "churn" not in ok(wh, "list"):  # this test may run alone (or on another xdist worker)
        ok(wh, "register", "churn", "--run-id", wh.run_id)
    fails(wh, "show", "ghost", needle="NotFoundError: no registered model named 'ghost'")
    fails(wh, "show", "churn/99", needle="has no version 99")
    fails(wh, "show", "churn@gold", needle="no alias 'gold'")
    fails(wh, "alias", "churn", "latest", "1", needle="InvalidInputError: alias 'latest' is reserved")
    fails(wh, "alias", "churn", "v3", "1", needle="looks like a version number")
    fails(wh, "deploy", "churn", "42", "--env", "prod", "--service", "api", needle="has no version 42")
    fails(wh, "register", "churn", "--run-id", "0" * 32, needle="NotFoundError")
    fails(wh, "gates", "churn", "--min-metric", "auc=high", needle="must be a number")
    # misuse is one line and exit 1 too: neither a version nor --delete, a negative limit
    fails(wh, "alias", "churn", "champion", needle="give a VERSION to set the alias, or --delete")
    fails(wh, "events", "-n", "-1", needle="'--limit' / '-n'")
