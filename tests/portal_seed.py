"""Seed a warehouse for the portal's browser tests and benchmark: an experiment of N runs (params,
metrics, tags), one run with a long metric series and artifacts, a model with two versions, gates and
a deployment. Everything goes through one Lake's public API, and is committed before returning."""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

EXPERIMENT = "churn"
MODEL = "churn-model"


def _png(path: Path, w: int = 64, h: int = 32) -> None:
    """A small valid PNG (a gradient), written without Pillow."""
    raw = b"".join(b"\x00" + b"".join(bytes((x * 4 % 256, y * 8 % 256, 160)) for x in range(w)) for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def seed(warehouse: str | Path, *, runs: int = 10_000, long_steps: int = 100_000, scratch: str | Path | None = None,
         ) -> dict:
    """Fill ``warehouse``; returns the ids the tests need."""
    import numpy as np

    import lakeml
    from lakeml.entities import Metric, Param, RunTag

    rng = random.Random(7)
    scratch = Path(scratch or Path(warehouse).parent / "seed-files")
    scratch.mkdir(parents=True, exist_ok=True)
    out: dict = {"experiment": EXPERIMENT, "model": MODEL}
    # the spool is off: the seed flushes at the end, and an fsync per run end would dominate its time
    with lakeml.connect(warehouse=str(warehouse), commit_interval=5.0, **{"lakeml.spool-dir": "off"}) as lake:
        # experiments are created by their first run (ids come from names: no lookup)
        models = ["gbm", "logreg", "mlp"]
        ids, table = [], []
        for i in range(runs):
            run = lake.create_run(EXPERIMENT, run_name=f"trial-{i:05d}", tags={"team": rng.choice(["risk", "growth"])},
                                  start_time_ms=(start_ms := 1_780_000_000_000 + i * 60_000))
            lr = round(10 ** rng.uniform(-4, -1), 6)
            depth = rng.randint(2, 12)
            model = models[i % 3]
            auc = round(0.6 + 0.35 * rng.random(), 5)
            loss = round(1 - auc + rng.random() * .1, 5)
            lake.log_batch(run.run_id, metrics=[Metric("val_auc", auc, 0), Metric("loss", loss, 0),
                                                Metric("train_time_s", round(rng.uniform(5, 500), 2), 0)],
                           params=[Param("lr", str(lr)), Param("max_depth", str(depth)), Param("model", model)],
                           tags=[RunTag("seed", str(i))])
            status = "FAILED" if i % 97 == 0 else "FINISHED"
            table.append({"run_id": run.run_id, "run_name": f"trial-{i:05d}", "status": status, "start_ms": start_ms,
                          "metrics.val_auc": auc, "metrics.loss": loss, "params.model": model, "params.lr": str(lr)})
            lake.set_terminated(run.run_id, status, end_time_ms=start_ms + rng.randint(5_000, 900_000), wait=False)
            ids.append(run.run_id)
        out["run_ids"] = ids
        out["runs"] = table  # what was logged, for tests to compute expected pages independently
        lake.create_run("baseline", run_name="majority-class")

        # one run with a long series (a spike at 2/3 of the way) and artifacts of each preview kind
        long = lake.create_run(EXPERIMENT, run_name="long-run", start_time_ms=1_790_000_000_000)
        steps = np.arange(long_steps, dtype=np.int64)
        values = 2.0 * np.exp(-steps / (long_steps / 5)) + 0.05 * np.sin(steps / 50.0) + 0.1
        spike = (2 * long_steps) // 3
        values[spike] = 25.0
        lake.log_batch(long.run_id, metrics={"key": "loss", "value": values, "step": steps})
        lake.log_batch(long.run_id, metrics=[Metric("val_auc", 0.97, 0)],
                       params=[Param("lr", "0.001"), Param("max_depth", "8"), Param("model", "gbm")])
        (scratch / "metrics.json").write_text(json.dumps({"val_auc": 0.97, "classes": ["stay", "churn"]}))
        (scratch / "confusion.csv").write_text("label,stay,churn\nstay,912,40\nchurn,31,217\n")
        (scratch / "notes.txt").write_text("trained on the november snapshot\n")
        _png(scratch / "roc.png")
        (scratch / "features.csv").write_text("customer_id,tenure,churned\n1,12,0\n2,3,1\n")
        for name in ("metrics.json", "notes.txt"):
            lake.log_artifact(long.run_id, scratch / name)
        for name in ("confusion.csv", "roc.png"):
            lake.log_artifact(long.run_id, scratch / name, "plots")
        lake.log_input(long.run_id, path=scratch / "features.csv", name="features")
        lake.set_terminated(long.run_id, "FINISHED", end_time_ms=1_790_000_900_000)
        out["long_run"] = long.run_id
        out["spike_step"] = spike

        # a model with two versions: v1 from a weak run (fails the gate), v2 from the long run (passes)
        weak = lake.create_run(EXPERIMENT, run_name="weak-candidate", start_time_ms=1_789_000_000_000)
        lake.log_batch(weak.run_id, metrics=[Metric("val_auc", 0.62, 0)],
                       params=[Param("lr", "0.1"), Param("max_depth", "2"), Param("model", "logreg")])
        lake.set_terminated(weak.run_id, "FINISHED", end_time_ms=1_789_000_100_000)
        lake.create_model(MODEL, description="Predicts which customers leave next month.")
        (scratch / "MLmodel").write_text("flavor: python\n")
        for r in (weak, long):
            lake.log_artifact(r.run_id, scratch / "MLmodel", "model")
            lake.register_model(MODEL, run_id=r.run_id)
        lake.record_deployment(MODEL, 1, environment="prod", service="scoring-api", service_version="2.4.1")
        lake.set_gates(MODEL, min_metrics={"val_auc": 0.9}, aliases=["champion"])
        lake.set_alias(MODEL, "challenger", 1)
        out["weak_run"] = weak.run_id
        for rid, name, start, auc, loss, model, lr in (
                (long.run_id, "long-run", 1_790_000_000_000, 0.97, float(values[-1]), "gbm", "0.001"),
                (weak.run_id, "weak-candidate", 1_789_000_000_000, 0.62, None, "logreg", "0.1")):
            table.append({"run_id": rid, "run_name": name, "status": "FINISHED", "start_ms": start,
                          "metrics.val_auc": auc,
                          "metrics.loss": loss, "params.model": model, "params.lr": lr})
        lake.flush()
    return out


if __name__ == "__main__":  # pragma: no cover - python -m tests.portal_seed WAREHOUSE [RUNS]
    import sys
    import time

    t0 = time.perf_counter()
    info = seed(sys.argv[1], runs=int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    print(f"seeded {len(info['run_ids'])} runs in {time.perf_counter() - t0:.1f} s")
