"""End to end (issue 12): train and register a model on an Iceberg table snapshot, serve it with
`lakeml models serve` (a real subprocess), send 5,000 rows like the training data and then 5,000 with two
features shifted, feed the labels back, run `lakeml monitor run` as a subprocess: drift alerts fire for
the two shifted features only, a webhook on loopback receives them, and the quality drops.
Also POST /api/v1/feedback on a real `lakeml server`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pyarrow as pa

import lakeml
from tests.servers import free_port
from tests.monitoring_seed import Receiver
from tests.serving_util import wait_for

WINDOW_S = 4  # short windows so that the test does not wait an hour; aligned on the epoch
FEATURES = ["a", "b", "c", "d"]


def draw(rng, n: int, shifted: bool = False) -> dict:
    a = rng.normal(2.5 if shifted else 0.0, 1.0, n)
    b = rng.normal(0.0, 1.0, n)
    c = rng.normal(3.0 if shifted else 0.0, 1.0, n)
    d = rng.uniform(0.0, 1.0, n)
    return {"a": a, "b": b, "c": c, "d": d, "y": ((a ** 2 + b) > 1).astype(np.int64)}


def next_boundary() -> None:
    """Sleep to just after the start of the next window (pacing the traffic into windows, not a timing
    assertion: nothing below depends on how long anything took)."""
    now = time.time()
    time.sleep(WINDOW_S - now % WINDOW_S + 0.05)


def send(url: str, data: dict, prefix: str, per_request: int = 250) -> list[tuple[str, int, int]]:
    """POST the rows in dataframe_split batches; returns (request_id, label, row_index) per row."""
    n = len(data["y"])
    out = []
    with httpx.Client(timeout=30) as client:
        for start in range(0, n, per_request):
            rows = [[float(data[f][i]) for f in FEATURES] for i in range(start, min(n, start + per_request))]
            rid = f"{prefix}-{start // per_request}"
            r = client.post(url + "/invocations", json={"dataframe_split": {"columns": FEATURES, "data": rows}},
                            headers={"X-Request-Id": rid})
            assert r.status_code == 200, r.text
            out += [(rid, int(data["y"][start + i]), i) for i in range(len(rows))]
    return out


def test_served_model_drifts_on_two_shifted_features_alerts_fire_and_quality_drops(tmp_path):
    from sklearn.linear_model import LogisticRegression

    wh = tmp_path / "wh"
    rng = np.random.default_rng(2026)
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2, commit_deadline=30)
    receiver = Receiver()
    proc = None
    try:
        # 1. train and register on an Iceberg table snapshot
        lake.store.catalog.create_namespace("e2e")
        train = draw(rng, 4000)
        tbl = lake.store.catalog.create_table("e2e.train", pa.table(train).schema)
        tbl.append(pa.table(train))
        import pandas as pd

        X = pd.DataFrame({f: train[f] for f in FEATURES})
        model = LogisticRegression().fit(X, train["y"])
        run = lake.create_run("e2e", run_name="logreg")
        lake.log_input(run.id, table="e2e.train", role="train")
        lake.log_model(run.id, model, "model", signature=lakeml.infer_signature(X, model.predict(X)))
        lake.set_terminated(run.id, "FINISHED")
        mv = lake.register_model("e2e", run_id=run.id)
        lake.set_alias("e2e", "champion", mv.version)
        lake.flush()

        # 2. serve it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(tmp_path / "serve.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "lakeml", "models", "serve", "models:/e2e@champion",
                                 "--port", str(port), "--warehouse", str(wh)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(url + "/health", proc=proc)

        # 3. 5,000 rows like the training data, then (in the next window) 5,000 with a and c shifted
        next_boundary()
        normal = send(url, draw(rng, 5000), "normal")
        next_boundary()
        shifted = send(url, draw(rng, 5000, shifted=True), "shifted")
        next_boundary()  # the shifted window is complete
        os.killpg(proc.pid, signal.SIGTERM)  # the service commits its prediction log on the way out
        # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean exit here
        assert proc.wait(60) in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()[-3000:]
        proc = None
        log.close()

        # 4. feed back the labels
        lake.log_feedbacks(normal + shifted)
        lake.flush()

        # 5. lakeml monitor run, with alert rules and the webhook
        rules = tmp_path / "rules.yaml"
        rules.write_text("webhooks: [%s]\nrules:\n"
                         "  - {name: feature_drift, check: psi, op: '>', threshold: 0.2, feature: any}\n"
                         "  - {name: accuracy_low, when: accuracy < 0.8}\n" % receiver.url)
        out = subprocess.run([sys.executable, "-m", "lakeml", "monitor", "run", "--window", f"{WINDOW_S}s",
                              "--rules", str(rules), "--warehouse", str(wh), "-o", "json"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr  # alerts fire
        res = json.loads(out.stdout)
        drift = sorted(a["feature"] for a in res["alerts"] if a["rule"] == "feature_drift")
        assert drift == ["a", "c"]  # the shifted features only
        assert [a["rule"] for a in res["alerts"] if a["feature"] is None] == ["accuracy_low"]
        assert len(receiver.bodies) == 1
        assert sorted((a["rule"], a["feature"]) for a in receiver.bodies[0]["alerts"]) == [
            ("accuracy_low", None), ("feature_drift", "a"), ("feature_drift", "c")]

        results = lake.monitoring.results("e2e")
        by_window: dict = {}
        for r in results:
            by_window.setdefault(r["window_start"], {})[(r["check_name"], r["feature"])] = r["value"]
        full = [w for w in by_window.values() if w.get(("requests", None), 0) >= 2]
        assert len(full) >= 2
        first, last = full[0], full[-1]
        assert all(first[("psi", f)] < 0.2 for f in FEATURES)  # the normal traffic does not drift
        assert last[("psi", "a")] > 0.2 and last[("psi", "c")] > 0.2
        assert last[("psi", "b")] < 0.2 and last[("psi", "d")] < 0.2
        assert last[("accuracy", None)] < first[("accuracy", None)] - 0.1  # the quality metric drops
        assert first[("labeled", None)] == first[("requests", None)] * 250  # every row got its label
        assert lake.sql("SELECT count(*) AS n FROM lakeml.predictions")["n"][0] == 10_000
        # float inputs are logged typed (feature_values), so the drift above was computed from that form
        assert lake.sql("SELECT count(*) AS n FROM lakeml.predictions WHERE feature_values IS NOT NULL "
                        "AND features IS NULL")["n"][0] == 10_000
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        receiver.close()
        lake.close()


def test_feedback_endpoint_on_a_real_server(lakeml_server):
    url = lakeml_server.url + "/api/v1/feedback"
    r = httpx.post(url, json={"request_id": "req-1", "label": 1, "row_index": 0}, timeout=30)
    assert r.status_code == 200 and r.json() == {"logged": 1}, r.text
    r = httpx.post(url, json={"feedback": [{"request_id": "req-2", "label": "spam"},
                                           {"request_id": "req-3", "label": 2.5, "row_index": 3}]}, timeout=30)
    assert r.json() == {"logged": 2}
    bad = httpx.post(url, json={"feedback": [{"request_id": "ok", "label": 1}, {"request_id": "", "label": 1}]},
                     timeout=30)
    assert bad.status_code == 400 and "feedback row 1: request_id ''" in bad.text
    assert httpx.post(url, json={"request_id": "x"}, timeout=30).status_code == 400
    assert httpx.post(url, json={"request_id": "x", "label": 1, "feedback": []}, timeout=30).status_code == 400
    with lakeml.connect(warehouse=lakeml_server.warehouse) as lake:
        got = lake.sql("SELECT request_id, row_index, label, label_json FROM lakeml.feedback ORDER BY 1").rows()
    assert got == [("req-1", 0, 1.0, "1"), ("req-2", None, None, '"spam"'), ("req-3", 3, 2.5, "2.5")]
