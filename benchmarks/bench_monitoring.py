"""Monitoring benchmark (issue 12): how long `lake.monitoring.run()` takes over logged predictions.

    .venv/bin/python benchmarks/bench_monitoring.py                    # 1M rows, 24 hourly windows
    .venv/bin/python benchmarks/bench_monitoring.py --rows 100000 --windows 6

Writes ``--rows`` prediction rows (8 numeric + 2 categorical features, 10 rows per request, half labeled)
spread over ``--windows`` hourly windows of one model version trained on a 100k-row Iceberg snapshot, then
times: (1) the first pass (every window computed: drift, quality, operations); (2) a second pass (every
window skipped: the idempotent cron case); (3) a pass after new labels for one window (one recomputed).
Prints wall seconds (and CPU seconds of this process, DuckDB's threads included) and rows per second.
No network.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import numpy as np
    import pyarrow as pa

    import lakeml
    from lakeml.clock import datetime_to_us

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--windows", type=int, default=24)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    num = [f"n{i}" for i in range(8)]
    with tempfile.TemporaryDirectory() as tmp:
        lake = lakeml.connect(warehouse=Path(tmp) / "wh")
        cat = lake.store.catalog
        cat.create_namespace("bench")
        train = {**{c: rng.normal(0, 1, 100_000) for c in num},
                 "cat_a": rng.choice(["x", "y", "z"], 100_000), "cat_b": rng.choice(list("abcdefgh"), 100_000),
                 "y": rng.integers(0, 2, 100_000)}
        tbl = cat.create_table("bench.train", pa.table(train).schema)
        tbl.append(pa.table(train))
        run = lake.create_run("bench-monitoring")
        lake.log_input(run.id, table="bench.train", role="train")
        lake.log_model(run.id, lambda rows: [0 for _ in rows], "model", pip_requirements=["numpy"])
        lake.set_terminated(run.id, "FINISHED")
        version = lake.register_model("bench", run_id=run.id).version

        t = time.perf_counter()
        start = datetime_to_us(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
                               - timedelta(hours=a.windows + 1))
        per_window = a.rows // a.windows
        step = 3_600_000_000 // per_window
        buf = lake.committer.buffer("predictions")
        labels = []
        for w in range(a.windows):
            shift = 0.5 if w >= a.windows // 2 else 0.0
            vals = {c: rng.normal(shift, 1, per_window) for c in num}
            ca, cb = rng.choice(["x", "y", "z"], per_window), rng.choice(list("abcdefgh"), per_window)
            pred = rng.integers(0, 2, per_window)
            rows = []
            for i in range(per_window):
                feats = {c: float(vals[c][i]) for c in num}
                feats["cat_a"], feats["cat_b"] = str(ca[i]), str(cb[i])
                rid = f"w{w}-{i // 10}"
                rows.append((rid, i % 10, start + w * 3_600_000_000 + i * step, "bench", version, "models:/bench/1",
                             "bench", json.dumps(feats), float(pred[i]), str(pred[i]), 3.0, 200, None, None, None))
                if i % 2 == 0:
                    labels.append((rid, int(rng.integers(0, 2)), i % 10))
            buf.extend(rows)
        lake.log_feedbacks(labels[:100_000]) if len(labels) <= 100_000 else [
            lake.log_feedbacks(labels[i:i + 100_000]) for i in range(0, len(labels), 100_000)]
        lake.flush()
        print(f"setup: {a.rows:,} prediction rows, {len(labels):,} labels in {time.perf_counter() - t:.1f} s")

        t, c = time.perf_counter(), time.process_time()
        res = lake.monitoring.run("bench", window="1h")
        first = time.perf_counter() - t
        print(f"first pass: {len(res.computed)} windows, {res.rows} results in {first:.2f} s "
              f"(CPU {time.process_time() - c:.2f} s; {a.rows / first:,.0f} prediction rows/s)")
        t, c = time.perf_counter(), time.process_time()
        res = lake.monitoring.run("bench", window="1h")
        print(f"second pass (all skipped): {len(res.skipped)} windows in {time.perf_counter() - t:.2f} s "
              f"(CPU {time.process_time() - c:.2f} s)")
        lake.log_feedbacks([(f"w0-{i}", 1) for i in range(50)])
        t, c = time.perf_counter(), time.process_time()
        res = lake.monitoring.run("bench", window="1h")
        print(f"after new labels: {len(res.computed)} recomputed, {len(res.skipped)} skipped in "
              f"{time.perf_counter() - t:.2f} s (CPU {time.process_time() - c:.2f} s)")
        lake.close()


if __name__ == "__main__":
    main()
