"""Monitoring checks: the SQL of sql/monitoring/ against scipy, sklearn and numpy on the same data, the
reference being the exact training snapshot of the version's lineage; feedback; idempotent windows."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, roc_auc_score

import lakeml
from lakeml.clock import now_us
from lakeml.errors import InvalidInputError, NotFoundError
from tests.monitoring_seed import COLORS, features, hour, prediction_rows, train_and_register, training_table, truth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def increasing_clock():
    last = [0]

    def clock() -> int:
        last[0] = max(now_us(), last[0] + 1)
        return last[0]
    return clock


def psi_ref(ref, cur) -> float:
    """The documented PSI: 10 bins cut at the reference deciles, shares floored at 1e-4."""
    cuts = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=10) / len(ref)
    q = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=10) / len(cur)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def jsd_ref(ref, cur) -> float:
    cats = sorted(set(ref) | set(cur))
    p = np.array([list(ref).count(c) for c in cats], float)
    q = np.array([list(cur).count(c) for c in cats], float)
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("monitoring") / "wh", commit_interval=0.2,
                          commit_deadline=30, clock=increasing_clock())
    rng = np.random.default_rng(7)
    data, snap = training_table(lake, rng)
    clf, cv = train_and_register(lake, data, snap, "clf")
    reg, rv = train_and_register(lake, data, snap, "reg", "regressor")
    cur = {0: features(rng, 1000), 1: features(rng, 1000, shift=2.5, colors=(0.1, 0.2, 0.7))}
    buf = lake.committer.buffer("predictions")
    ids = {}
    for k, f in cur.items():
        rows, ids[k] = prediction_rows(clf, "clf", cv, f, hour(k), failed=3 * k, latency=5.0 + k)
        buf.extend(rows)
    reg_f = features(rng, 400)
    reg_rows, _ = prediction_rows(reg, "reg", rv, reg_f, hour(0), rows_per_request=1, prefix="g")
    buf.extend(reg_rows)
    # labels. window 0: one per row; the first 100 rows get a wrong label first, corrected later (latest wins)
    y0 = truth(cur[0]["x1"], cur[0]["x2"], cur[0]["x3"])
    lake.log_feedbacks([(ids[0][i], int(1 - y0[i]), i % 5) for i in range(100)])
    lake.flush()
    lake.log_feedbacks([{"request_id": ids[0][i], "label": int(y0[i]), "row_index": i % 5} for i in range(1000)])
    # window 1: the first 600 rows (120 requests) labeled per request (row_index None: every row of it)
    y1 = truth(cur[1]["x1"], cur[1]["x2"], cur[1]["x3"])
    for i in range(0, 600, 5):
        lake.log_feedback(ids[1][i], bool(y1[i]))  # a boolean label is 0/1
    reg_y = 2.0 * reg_f["x2"] + reg_f["x3"] + rng.normal(0, 0.5, 400)
    lake.log_feedbacks({"request_id": f"g{hour(0)}-{i}", "label": float(reg_y[i])} for i in range(400))
    result = lake.monitoring.run(window="1h")
    got = {(r["model_name"], r["window_start"].timestamp(), r["check_name"], r["feature"]): r
           for r in lake.monitoring.results()}
    yield {"lake": lake, "data": data, "snap": snap, "clf": clf, "reg": reg, "cur": cur, "y1": y1, "reg_f": reg_f,
           "reg_y": reg_y, "result": result, "got": got, "ids": ids}
    lake.close()


def value(s, model, k, check, feature=None):
    return s["got"][(model, hour(k) / 1e6, check, feature)]["value"]


def test_every_window_and_model_is_computed_against_the_training_snapshot(seeded):
    res = seeded["result"]
    assert sorted((m, s) for m, _, s in res.computed) == [("clf", hour(0)), ("clf", hour(1)), ("reg", hour(0))]
    refs = {r["reference"] for r in seeded["got"].values() if r["check_name"] in ("psi", "ks", "jsd")}
    assert refs == {f"shop.train@{seeded['snap']}"}  # the snapshot trained on, not the table's current one


@pytest.mark.parametrize("k", [0, 1])
def test_numeric_drift_matches_numpy_psi_and_scipy_ks(seeded, k):
    data, cur = seeded["data"], seeded["cur"][k]
    for feat in ("x1", "x2", "x3"):
        ref = data[feat].to_numpy()
        assert value(seeded, "clf", k, "psi", feat) == pytest.approx(psi_ref(ref, cur[feat]), abs=1e-9)
        assert value(seeded, "clf", k, "ks", feat) == pytest.approx(ks_2samp(ref, cur[feat]).statistic, abs=1e-12)


@pytest.mark.parametrize("k", [0, 1])
def test_categorical_drift_matches_scipy_jensenshannon(seeded, k):
    expected = jsd_ref(seeded["data"]["color"].to_pylist(), list(seeded["cur"][k]["color"]))
    assert value(seeded, "clf", k, "jsd", "color") == pytest.approx(expected, abs=1e-9)
    assert ("clf", hour(k) / 1e6, "psi", "color") not in seeded["got"]  # categoricals get jsd only


def test_only_the_shifted_features_drift(seeded):
    assert value(seeded, "clf", 0, "psi", "x1") < 0.1 and value(seeded, "clf", 1, "psi", "x1") > 1.0
    assert value(seeded, "clf", 1, "psi", "x2") < 0.1 and value(seeded, "clf", 1, "psi", "x3") < 0.1
    assert value(seeded, "clf", 0, "jsd", "color") < 0.05 < 0.2 < value(seeded, "clf", 1, "jsd", "color")


def test_classifier_quality_matches_sklearn_with_the_latest_label_of_each_row(seeded):
    clf, cur = seeded["clf"], seeded["cur"]
    X0 = np.column_stack([cur[0]["x1"], cur[0]["x2"], cur[0]["x3"]])
    y0, p0 = truth(cur[0]["x1"], cur[0]["x2"], cur[0]["x3"]), clf.predict(X0)
    assert value(seeded, "clf", 0, "accuracy") == pytest.approx(accuracy_score(y0, p0), abs=1e-12)
    assert value(seeded, "clf", 0, "f1") == pytest.approx(f1_score(y0, p0), abs=1e-12)
    assert value(seeded, "clf", 0, "auc") == pytest.approx(roc_auc_score(y0, p0), abs=1e-12)
    # window 1: 600 labeled rows, each request's label given once for all its rows
    X1 = np.column_stack([cur[1]["x1"], cur[1]["x2"], cur[1]["x3"]])[:600]
    y1 = np.repeat(seeded["y1"][:600:5], 5)
    p1 = clf.predict(X1)
    assert seeded["got"][("clf", hour(1) / 1e6, "labeled", None)]["value"] == 600
    assert value(seeded, "clf", 1, "accuracy") == pytest.approx(accuracy_score(y1, p1), abs=1e-12)
    assert value(seeded, "clf", 1, "f1") == pytest.approx(f1_score(y1, p1), abs=1e-12)
    assert value(seeded, "clf", 1, "auc") == pytest.approx(roc_auc_score(y1, p1), abs=1e-12)
    assert value(seeded, "clf", 1, "accuracy") < value(seeded, "clf", 0, "accuracy") - 0.1  # the shift hurts


def test_regressor_quality_and_prediction_drift(seeded):
    f, y, reg = seeded["reg_f"], seeded["reg_y"], seeded["reg"]
    p = reg.predict(np.column_stack([f["x1"], f["x2"], f["x3"]]))
    assert value(seeded, "reg", 0, "mae") == pytest.approx(mean_absolute_error(y, p), abs=1e-9)
    assert value(seeded, "reg", 0, "rmse") == pytest.approx(np.sqrt(mean_squared_error(y, p)), abs=1e-9)
    z = seeded["data"]["z"].to_numpy()  # the target the run named (param target=z)
    assert value(seeded, "reg", 0, "prediction_psi") == pytest.approx(psi_ref(z, p), abs=1e-9)
    assert value(seeded, "reg", 0, "prediction_ks") == pytest.approx(ks_2samp(z, p).statistic, abs=1e-12)
    assert ("reg", hour(0) / 1e6, "accuracy", None) not in seeded["got"]


def test_classifier_prediction_drift_is_jsd_of_predicted_vs_training_classes(seeded):
    clf, cur = seeded["clf"], seeded["cur"][1]
    pred = clf.predict(np.column_stack([cur["x1"], cur["x2"], cur["x3"]]))
    expected = jsd_ref([str(float(v)) for v in seeded["data"]["y"].to_pylist()], [str(float(v)) for v in pred])
    assert value(seeded, "clf", 1, "prediction_jsd") == pytest.approx(expected, abs=1e-9)
    assert not [k for k in seeded["got"] if k[0] == "clf" and k[2] in ("prediction_psi", "prediction_ks")]
    assert all(r["value"] is not None for r in seeded["got"].values() if r["check_name"] != "auc")


def test_operations(seeded):
    for k in (0, 1):
        requests = 200 + 3 * k
        assert value(seeded, "clf", k, "requests") == requests
        assert value(seeded, "clf", k, "request_rate") == pytest.approx(requests / 3600)
        assert value(seeded, "clf", k, "error_rate") == pytest.approx(3 * k / requests)
        lat = [5.0 + k + r % 17 for r in range(200)] + [1.0 + j for j in range(3 * k)]
        for q in (50, 95, 99):
            assert value(seeded, "clf", k, f"latency_p{q}") == pytest.approx(np.quantile(lat, q / 100), abs=1e-9)


def test_rerun_skips_computed_windows_and_recomputes_a_window_whose_labels_grew(seeded):
    lake = seeded["lake"]
    count = lambda: lake.sql("SELECT count(*) AS n FROM lakeml.monitoring")["n"][0]  # noqa: E731
    before = count()
    again = lake.monitoring.run(window="1h")
    assert again.computed == [] and len(again.skipped) == 3 and count() == before
    y1, ids = seeded["y1"], seeded["ids"][1]
    lake.log_feedbacks([(ids[i], int(y1[i])) for i in range(600, 1000, 5)])
    third = lake.monitoring.run(model="clf", window="1h")
    assert [(m, s) for m, _, s in third.computed] == [("clf", hour(1))] and len(third.skipped) == 1
    assert count() > before
    latest = lake.sql("SELECT window_start, count(DISTINCT computation_id) AS c, max(value) FILTER "
                      "(WHERE check_name = 'labeled') AS labeled FROM lakeml.monitoring_latest "
                      "WHERE model_name = 'clf' GROUP BY 1 ORDER BY 1").rows()
    assert [(c, labeled) for _, c, labeled in latest] == [(1, 1000.0), (1, 1000.0)]


def test_incomplete_windows_wait_and_since_limits_the_range(seeded):
    lake = seeded["lake"]
    res = lake.monitoring.run(model="reg", window="1d", until=hour(0) + 3_600_000_000)
    assert res.computed == [] and any("no complete 1d window" in n for n in res.notes)
    res = lake.monitoring.run(model="clf", window="1d", since="2026-01-06")
    assert res.computed == [] and res.skipped == []


def test_run_refuses_bad_arguments(seeded):
    lake = seeded["lake"]
    with pytest.raises(InvalidInputError, match="window '1 hour' is not a duration"):
        lake.monitoring.run(window="1 hour")
    with pytest.raises(InvalidInputError, match="since 'yesterday'"):
        lake.monitoring.run(since="yesterday")
    with pytest.raises(NotFoundError, match="no logged predictions of model 'nope'"):
        lake.monitoring.run(model="nope")


def test_a_version_without_lineage_gets_operations_and_quality_but_no_drift(seeded, tmp_path):
    lake = seeded["lake"]
    run = lake.create_run("monitoring-tests", run_name="nolineage")
    lake.log_model(run.id, seeded["clf"], "model")
    lake.set_terminated(run.id, "FINISHED")
    v = lake.register_model("bare", run_id=run.id).version
    rows, ids = prediction_rows(seeded["clf"], "bare", v, seeded["cur"][0], hour(0), prefix="b")
    lake.committer.buffer("predictions").extend(rows)
    lake.log_feedbacks([(i, 1, n % 5) for n, i in enumerate(ids)])
    res = lake.monitoring.run(model="bare", window="1h")
    assert any("no Iceberg input in its lineage" in n for n in res.notes)
    checks = {r["check_name"] for r in lake.monitoring.results("bare")}
    assert {"requests", "accuracy", "latency_p99"} <= checks and not checks & {"psi", "ks", "jsd"}


def test_feedback_rows_and_validation(seeded):
    lake = seeded["lake"]
    lake.log_feedback("req-x", "cat", row_index=2)
    lake.log_feedback("req-y", 3.5)
    got = lake.sql("SELECT request_id, row_index, label, label_json, user IS NOT NULL AS u FROM lakeml.feedback "
                   "WHERE request_id IN ('req-x', 'req-y') ORDER BY 1").rows()
    assert got == [("req-x", 2, None, '"cat"', True), ("req-y", None, 3.5, "3.5", True)]
    for args, match in [(("", 1), "request_id '' must be a non-empty string"),
                        (("r", 1.0, -1), "row_index -1 must be an integer >= 0"),
                        (("r", float("nan")), "label nan must be finite"),
                        (("r", object()), "must be a JSON value")]:
        with pytest.raises(InvalidInputError, match=match):
            lake.log_feedback(args[0], args[1], row_index=args[2] if len(args) > 2 else None)
    n = lake.sql("SELECT count(*) AS n FROM lakeml.feedback")["n"][0]
    with pytest.raises(InvalidInputError, match="feedback row 1: request_id None"):
        lake.log_feedbacks([("ok", 1), (None, 1)])
    with pytest.raises(InvalidInputError, match="feedback row 0 has keys"):
        lake.log_feedbacks([{"request_id": "a", "labels": 1}])
    assert lake.sql("SELECT count(*) AS n FROM lakeml.feedback")["n"][0] == n  # nothing of a refused batch kept
    assert json.loads(lake.sql("SELECT label_json FROM lakeml.feedback WHERE request_id = 'req-x'")["label_json"][0]) == "cat"
    assert set(COLORS) == {"red", "green", "blue"}


def test_since_takes_the_whole_window_it_falls_in(seeded):
    lake = seeded["lake"]
    half = 1_800_000_000
    since = datetime.fromtimestamp((hour(0) + half + 600_000_000) / 1e6, tz=timezone.utc).isoformat()  # 00:40
    res = lake.monitoring.run(model="reg", window="30m", since=since)
    assert [(m, s) for m, _, s in res.computed] == [("reg", hour(0) + half)]  # 00:30-01:00, all of it
    want = lake.sql("SELECT count(*) AS n FROM lakeml.predictions WHERE model_name = 'reg' AND ts >= $1 AND ts < $2",
                    params=[datetime.fromtimestamp((hour(0) + half) / 1e6, tz=timezone.utc),
                            datetime.fromtimestamp(hour(1) / 1e6, tz=timezone.utc)])["n"][0]
    got = {r["check_name"]: r["value"] for r in lake.monitoring.results("reg", window="30m")}
    assert got["requests"] == want > 150


@pytest.mark.parametrize("lake", ["file", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)
def test_monitoring_on_each_storage(lake):
    """The same pass on a local folder and on S3 (moto over HTTP): the training snapshot is read from the
    object store, the checks match the references."""
    rng = np.random.default_rng(3)
    data, snap = training_table(lake, rng, n=400)
    clf, v = train_and_register(lake, data, snap, "small")
    f = features(rng, 300, shift=1.0)
    rows, ids = prediction_rows(clf, "small", v, f, hour(0), prefix="s")
    lake.committer.buffer("predictions").extend(rows)
    y = truth(f["x1"], f["x2"], f["x3"])
    lake.log_feedbacks([(ids[i], int(y[i]), i % 5) for i in range(300)])
    res = lake.monitoring.run(window="1h")
    assert len(res.computed) == 1 and not res.notes
    got = {(r["check_name"], r["feature"]): r["value"] for r in lake.monitoring.results("small")}
    assert got[("ks", "x1")] == pytest.approx(ks_2samp(data["x1"].to_numpy(), f["x1"]).statistic, abs=1e-12)
    assert got[("psi", "x1")] == pytest.approx(psi_ref(data["x1"].to_numpy(), f["x1"]), abs=1e-9)
    pred = clf.predict(np.column_stack([f["x1"], f["x2"], f["x3"]]))
    assert got[("accuracy", None)] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
