"""The benchmark data set, identical for lakeml and MLflow: runs x params x metrics x steps.

Run ``i`` has params ``p0..p{P-1}`` and metrics ``m0..m{M-1}`` logged at steps
``0..S-1``. ``p1`` takes 5 values (``v0``..``v4``) so "best final m0 per p1" has
a small answer; the other params have a few dozen values each. Values are
deterministic (seeded), so both stores hold exactly the same numbers.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass

EXPERIMENT = "bench"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Shape:
    runs: int = 2000
    params: int = 20
    metrics: int = 10
    steps: int = 100


def param_value(i: int, j: int) -> str:
    return f"v{i % 5}" if j == 1 else f"v{(i * 7 + j * 13) % (j * 3 + 7)}"


def run_params(i: int, shape: Shape) -> dict[str, str]:
    return {f"p{j}": param_value(i, j) for j in range(shape.params)}


def run_metrics(i: int, shape: Shape) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp_ms) for every point of run ``i``."""
    rnd = random.Random(i)
    out = []
    for k in range(shape.metrics):
        final = 0.5 + 0.5 * rnd.random()
        rate = 5 + 30 * rnd.random()
        for s in range(shape.steps):
            v = final * (1 - math.exp(-(s + 1) / rate)) + 0.01 * rnd.random()
            out.append((f"m{k}", v, s, BASE_MS + i * 1000 + s))
    return out


def load_lakeml(lake, shape: Shape, experiment: str = EXPERIMENT) -> list[str]:
    """Log the data set through the public API (``Lake.log_batch``); returns the run ids."""
    from lakeml.entities import Metric, Param

    ids = []
    for i in range(shape.runs):
        run = lake.create_run(experiment, run_name=f"run-{i}", start_time_ms=BASE_MS + i * 1000)
        lake.log_batch(run.run_id, params=[Param(k, v) for k, v in run_params(i, shape).items()],
                       metrics=[Metric(k, v, s, t) for k, v, s, t in run_metrics(i, shape)])
        lake.set_terminated(run.run_id, end_time_ms=BASE_MS + i * 1000 + shape.steps, flush=False)
        ids.append(run.run_id)
    lake.flush()
    return ids


def load_mlflow(client, shape: Shape, experiment: str = EXPERIMENT) -> list[str]:
    """Log the same data set into MLflow with ``MlflowClient.log_batch`` (1,000 metrics per call)."""
    from mlflow.entities import Metric, Param

    exp = client.get_experiment_by_name(experiment)
    eid = exp.experiment_id if exp else client.create_experiment(experiment)
    ids = []
    for i in range(shape.runs):
        run = client.create_run(eid, run_name=f"run-{i}", start_time=BASE_MS + i * 1000)
        rid = run.info.run_id
        client.log_batch(rid, params=[Param(k, v) for k, v in run_params(i, shape).items()])
        pts = [Metric(k, v, t, s) for k, v, s, t in run_metrics(i, shape)]
        for a in range(0, len(pts), 1000):
            client.log_batch(rid, metrics=pts[a:a + 1000])
        client.set_terminated(rid, "FINISHED", end_time=BASE_MS + i * 1000 + shape.steps)
        ids.append(rid)
    return ids


def scale_tables(lake, n_runs: int, points_per_run: int, *, chunk_runs: int = 10000,
                 n_experiments: int = 20, log=print) -> None:
    """Write ``n_runs`` runs and ``n_runs * points_per_run`` metric points as large Arrow appends.

    Bypasses the client (it would take hours through log calls) but writes the very
    rows the client writes, in the tables' contract schemas, sorted as the committer sorts.
    """
    import numpy as np
    import pyarrow as pa

    from lakeml.client.lake import experiment_id_for
    from lakeml.storage.committer import rows_to_arrow

    store = lake.store
    metrics_per_run = 10
    steps = points_per_run // metrics_per_run
    rng = np.random.default_rng(0)
    exps = [f"exp-{e}" for e in range(n_experiments)]
    exp_rows = [(experiment_id_for(n), n, f"{lake.config.artifact_root}/{experiment_id_for(n)}", BASE_MS * 1000, [])
                for n in exps]
    store.table("experiments").append(rows_to_arrow(store.contracts["experiments"], exp_rows))
    ts_type = pa.timestamp("us", tz="UTC")
    keys = np.array([f"m{k}" for k in range(metrics_per_run)])
    for a in range(0, n_runs, chunk_runs):
        t0 = time.time()
        n = min(chunk_runs, n_runs - a)
        idx = np.arange(a, a + n)
        run_ids = np.array([hashlib.md5(str(i).encode()).hexdigest() for i in idx])
        exp_i = idx % n_experiments
        run_rows = []
        for j, i in enumerate(idx):
            name = exps[exp_i[j]]
            st = (BASE_MS + int(i) * 1000) * 1000
            for seq, status in enumerate(("RUNNING", "FINISHED")):
                run_rows.append((run_ids[j], experiment_id_for(name), st + seq * 1000, seq, status, f"run-{i}",
                                 None, st, st + 1000 if seq else None, "bench", "datagen", None, None, "host",
                                 1, name))
        store.table("runs").append(rows_to_arrow(store.contracts["runs"], run_rows))
        p_rows = [(run_ids[j], f"p{k}", param_value(int(i), k), BASE_MS * 1000) for j, i in enumerate(idx)
                  for k in range(20)]
        store.table("params").append(rows_to_arrow(store.contracts["params"], p_rows))
        # metrics: run-major, key, step order (the committer's sort order)
        total = n * points_per_run
        rid_col = np.repeat(run_ids, points_per_run)
        key_col = np.tile(np.repeat(keys, steps), n)
        step_col = np.tile(np.arange(steps, dtype=np.int64), n * metrics_per_run)
        final = rng.random(n * metrics_per_run) * 0.5 + 0.5
        value = np.repeat(final, steps) * (1 - np.exp(-(step_col + 1) / 30.0)) + 0.01 * rng.random(total)
        ts = (BASE_MS * 1000 + step_col * 1000).astype("int64")
        data = pa.table({
            "run_id": pa.array(rid_col, pa.string()), "key": pa.array(key_col, pa.string()),
            "value": pa.array(value, pa.float64()), "step": pa.array(step_col, pa.int64()),
            "timestamp": pa.array(ts, pa.int64()).cast(ts_type)},
            schema=store.contracts["metrics"].arrow_schema()).sort_by([("run_id", "ascending")])
        store.table("metrics").append(data)
        log(f"  runs {a + n:>7,}/{n_runs:,}  metric points {(a + n) * points_per_run:>12,}  "
            f"({time.time() - t0:.1f}s)")
