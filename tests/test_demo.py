"""``lakeml demo`` end to end on a file warehouse: real models, real metrics, real lineage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli import demo
from lakeml.cli.main import app


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Run ``lakeml demo -o json`` once; yields (warehouse, its JSON result)."""
    wh = tmp_path_factory.mktemp("demo") / "wh"
    r = CliRunner().invoke(app, ["demo", "-o", "json", "--warehouse", str(wh)], env={"LAKEML_CATALOG": ""},
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "trained gbt-depth1-lr0.3" in r.stderr  # progress goes to stderr with -o json
    return wh, json.loads(r.stdout)


@pytest.fixture
def lake(demo_run):
    with lakeml.connect(warehouse=demo_run[0]) as lk:
        yield lk


def test_leaderboard_is_every_model_best_first(demo_run, lake):
    _, result = demo_run
    board = result["leaderboard"]
    assert sorted(r["run_name"] for r in board) == sorted(s["name"] for s in demo.model_grid())
    aucs = [r["val_auc"] for r in board]
    assert aucs == sorted(aucs, reverse=True)
    assert all(0.9 < a <= 1.0 for a in aucs)  # real models on a clean data set
    assert [r["rank"] for r in board] == list(range(1, len(board) + 1))
    parent = lake.get_run(result["parent_run_id"])
    assert parent.status == lakeml.RunStatus.FINISHED
    assert parent.tags["best_run_id"] == board[0]["run_id"]
    assert parent.metrics["best_val_auc"] == pytest.approx(board[0]["val_auc"])


def test_every_run_has_params_per_iteration_metrics_artifacts_and_lineage(demo_run, lake):
    _, result = demo_run
    specs = {s["name"]: s for s in demo.model_grid()}
    for row in result["leaderboard"]:
        run = lake.get_run(row["run_id"])
        spec = specs[run.run_name]
        assert run.status == lakeml.RunStatus.FINISHED
        assert run.parent_run_id == result["parent_run_id"]
        assert run.params["model"] == spec["name"]
        assert {k: str(v) for k, v in spec["params"].items()}.items() <= run.params.items()
        steps = spec["params"].get("n_estimators") or spec["params"]["epochs"]
        hist = lake.get_metric_history(run.run_id, "val_auc")
        assert hist["step"].to_list() == list(range(steps))
        assert hist["value"][-1] == pytest.approx(row["val_auc"])
        assert hist["value"].n_unique() > 1  # the metric moves over the iterations
        assert {a.path for a in lake.list_artifacts(run.run_id)} == {"model", "report.json"}
        (inp,) = run.inputs
        assert (inp.kind, inp.table, inp.role) == ("iceberg", demo.DEMO_TABLE, "train")
        assert inp.snapshot_id == result["snapshot_id"]


def test_logged_model_reproduces_its_logged_metric(demo_run, lake, tmp_path):
    """Load the pickled model and the exact input snapshot back; its accuracy is the one logged."""
    import joblib

    _, result = demo_run
    best = result["leaderboard"][0]
    model = joblib.load(lake.download_artifacts(best["run_id"], "model/model.joblib", tmp_path))
    data = lake.load_input(best["run_id"], demo.DEMO_TABLE)
    assert data.num_rows == 569
    val = data.filter(data["split"].to_numpy(zero_copy_only=False) == "validation").sort_by("row_id")
    features = [c for c in val.column_names if c not in ("row_id", "split", "target")]
    X = np.column_stack([val[c].to_numpy() for c in features])
    acc = float(np.mean(model.predict(X) == val["target"].to_numpy()))
    assert acc == pytest.approx(best["val_accuracy"])
    report = json.loads(Path(lake.download_artifacts(best["run_id"], "report.json", tmp_path / "r")).read_text())
    assert report["model"] == best["run_name"]
    assert sum(map(sum, report["confusion_matrix"])) == val.num_rows


def test_dataset_table_is_reused_not_rewritten(demo_run, lake):
    _, result = demo_run
    tbl = lake.store.catalog.load_table(demo.DEMO_TABLE)
    assert tbl.current_snapshot().snapshot_id == result["snapshot_id"]
    again = demo.ensure_dataset_table(lake.store.catalog)
    assert again.current_snapshot().snapshot_id == result["snapshot_id"]
    assert len(again.history()) == 1


def test_scores_match_sklearn():
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    rng = np.random.default_rng(7)
    for _ in range(20):
        y = rng.integers(0, 2, 150)
        p = np.round(rng.random(150), 2)  # ties and exact 0/1 included
        s = demo._scores(y, p)
        assert s["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert s["loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
        assert s["accuracy"] == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)), abs=1e-12)


def test_demo_text_output_prints_the_leaderboard(tmp_path):
    r = CliRunner().invoke(app, ["demo", "--warehouse", str(tmp_path / "wh"), "-e", "demo-text"],
                           env={"LAKEML_CATALOG": ""}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "leaderboard of experiment 'demo-text'" in out
    header = next(ln for ln in out.splitlines() if ln.startswith("rank"))
    assert header.split()[:3] == ["rank", "run_name", "val_auc"]
    assert "lakeml runs show " in out
