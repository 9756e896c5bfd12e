"""Shared data for the monitoring tests (and a webhook receiver): a training table, a model version trained on one exact snapshot
of it, and logged predictions in hourly windows (written through the committer, in the shape of
catalog/tables/predictions.yaml), some with labels."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa

from lakeml.clock import datetime_to_us

TRAIN = "shop.train"
T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)  # window 0 starts here; windows are 1h
HOUR = 3_600_000_000
COLORS = ["red", "green", "blue"]


def truth(x1, x2, x3):
    """Class rule: quadratic in x1, so a linear model trained near x1 = 0 is wrong once x1 moves."""
    return ((x1 ** 2 + x2 - 1) > 0).astype(int)


def features(rng, n: int, shift: float = 0.0, colors=(0.5, 0.3, 0.2)) -> dict:
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    x3 = rng.uniform(0.0, 10.0, n).round(1)  # ties, for KS and AUC
    color = rng.choice(COLORS, n, p=list(colors))
    return {"x1": x1, "x2": x2, "x3": x3, "color": color}


def training_table(lake, rng, n: int = 3000):
    """A real Iceberg table outside the lakeml namespace, appended twice (the model uses the first snapshot)."""
    cat = lake.store.catalog
    try:
        cat.create_namespace("shop")
    except Exception:  # noqa: BLE001 - already there
        pass
    f = features(rng, n)
    data = pa.table({**f, "y": truth(f["x1"], f["x2"], f["x3"]), "z": 2.0 * f["x2"] + f["x3"]})
    tbl = cat.create_table(TRAIN, data.schema)
    tbl.append(data)
    snap = tbl.current_snapshot().snapshot_id
    later = features(rng, 50, shift=5.0)  # appended after training: must not be in the reference
    tbl.append(pa.table({**later, "y": truth(later["x1"], later["x2"], later["x3"]),
                         "z": 2.0 * later["x2"] + later["x3"]}))
    return data, snap


def train_and_register(lake, data, snap, name: str, kind: str = "classifier"):
    """Train on the snapshot, log the input at that snapshot, register; returns (model, version)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X = np.column_stack([data["x1"].to_numpy(), data["x2"].to_numpy(), data["x3"].to_numpy()])
    run = lake.create_run("monitoring-tests", run_name=name)
    lake.log_input(run.id, table=TRAIN, role="train", snapshot_id=snap)
    # two training columns are not features (y, z): the run names its target (param "target")
    if kind == "classifier":
        model = LogisticRegression().fit(X, data["y"].to_numpy())
        lake.log_param(run.id, "target", "y")
    else:
        model = LinearRegression().fit(X, data["z"].to_numpy())
        lake.log_param(run.id, "target", "z")
    lake.log_model(run.id, model, "model")
    lake.set_terminated(run.id, "FINISHED")
    mv = lake.register_model(name, run_id=run.id)
    return model, mv.version


def prediction_rows(model, name: str, version: int, f: dict, start_us: int, rows_per_request: int = 5,
                    failed: int = 0, latency: float = 5.0, prefix: str = "r") -> tuple[list[tuple], list[str]]:
    """Rows for the predictions table: one request per ``rows_per_request`` rows, spread over the hour
    from ``start_us``; plus ``failed`` failed requests (row_index -1, status 400). Returns rows and the
    request id of each scored row."""
    X = np.column_stack([f["x1"], f["x2"], f["x3"]])
    pred = model.predict(X)
    n = len(pred)
    rows, ids = [], []
    step = (HOUR - 1_000_000) // max(n + failed, 1)
    for i in range(n):
        rid = f"{prefix}{start_us}-{i // rows_per_request}"
        feat = {"x1": float(f["x1"][i]), "x2": float(f["x2"][i]), "x3": float(f["x3"][i]), "color": str(f["color"][i])}
        rows.append((rid, i % rows_per_request, start_us + i * step, name, version, f"models:/{name}/{version}",
                     "test-serve", json.dumps(feat), float(pred[i]), json.dumps(pred[i].item()),
                     latency + (i // rows_per_request) % 17, 200, None, None, None))
        ids.append(rid)
    for j in range(failed):
        rows.append((f"{prefix}{start_us}-fail{j}", -1, start_us + (n + j) * step, name, version,
                     f"models:/{name}/{version}", "test-serve", None, None, None, 1.0 + j, 400, "bad input", None, None))
    return rows, ids


def hour(k: int) -> int:
    return datetime_to_us(T0) + k * HOUR


class Receiver:
    """A webhook receiver: a real HTTP server on a free loopback port, keeping each JSON body it gets."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
