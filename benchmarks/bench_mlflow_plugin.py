"""The same MLflow client workload on MLflow's own SQLite store and on the ``lakeml://`` plugin (no server).

Each store gets: ``--runs`` runs, each logging ``--params`` params, ``--points`` metric points one
``log_metric`` call at a time, then ``--batches`` ``log_batch`` calls of 1,000 points; then
``search_runs`` with a filter and an order, and ``get_metric_history`` of one run. Times for lakeml
include committing everything to Iceberg (``lake.flush()``), so both columns are durable work.
Prints each phase's time and points/s, and lakeml's speed-up (mlflow / lakeml).

    python benchmarks/bench_mlflow_plugin.py [--runs 5] [--points 500] [--batches 5] [--params 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def workload(uri: str, a: argparse.Namespace, flush) -> dict[str, float]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=uri)
    eid = client.create_experiment("bench")
    out: dict[str, float] = {}
    t = time.perf_counter()
    run_ids = []
    for r in range(a.runs):
        run = client.create_run(eid, run_name=f"run-{r}")
        rid = run.info.run_id
        run_ids.append(rid)
        for p in range(a.params):
            client.log_param(rid, f"p{p}", str(p * r))
        for s in range(a.points):
            client.log_metric(rid, "loss", 1.0 / (s + 1), step=s)
        client.set_terminated(rid)
    flush()
    out["log_metric"] = time.perf_counter() - t
    t = time.perf_counter()
    now = int(time.time() * 1000)
    for rid in run_ids:
        for b in range(a.batches):
            client.log_batch(rid, metrics=[Metric("acc", i / 1000, now, b * 1000 + i) for i in range(1000)])
    flush()
    out["log_batch"] = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(5):
        found = client.search_runs([eid], "params.p1 != 'x'", order_by=["metrics.loss ASC"], max_results=100)
    out["search_runs"] = (time.perf_counter() - t) / 5
    assert len(found) == a.runs, found
    t = time.perf_counter()
    hist = client.get_metric_history(run_ids[0], "acc")
    out["history"] = time.perf_counter() - t
    assert len(hist) == a.batches * 1000, len(hist)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--points", type=int, default=500, help="log_metric calls per run")
    ap.add_argument("--batches", type=int, default=5, help="log_batch calls of 1,000 points per run")
    ap.add_argument("--params", type=int, default=10)
    a = ap.parse_args()

    import mlflow  # noqa: F401 - imported once, outside the timings

    from lakeml.mlflow_plugin import lake_for

    base = Path(tempfile.mkdtemp(prefix="bench-mlflow-plugin-"))
    lake_uri = f"lakeml://{base / 'wh'}"
    lake_for(lake_uri).init()  # table creation is a one-time cost, not the workload's
    stores = {"mlflow sqlite": (f"sqlite:///{base / 'mlflow.db'}", lambda: None),
              "lakeml://": (lake_uri, lambda: lake_for(lake_uri).flush())}
    results = {name: workload(uri, a, flush) for name, (uri, flush) in stores.items()}

    pts = {"log_metric": a.runs * a.points, "log_batch": a.runs * a.batches * 1000}
    print(f"{a.runs} runs x ({a.params} params, {a.points} log_metric calls, {a.batches} log_batch of 1,000 points)")
    print(f"{'phase':<12} {'mlflow sqlite':>16} {'lakeml://':>16} {'speed-up':>9}")
    m, lk = results["mlflow sqlite"], results["lakeml://"]
    for phase in ("log_metric", "log_batch", "search_runs", "history"):
        def cell(sec: float) -> str:
            return f"{pts[phase] / sec:,.0f} pts/s" if phase in pts else f"{sec * 1000:,.1f} ms"
        print(f"{phase:<12} {cell(m[phase]):>16} {cell(lk[phase]):>16} {m[phase] / lk[phase]:>8.1f}x")


if __name__ == "__main__":
    main()
