"""Table-health benchmark (issue 5): latency after hours of logging, storage per million points,
and the durability window of the spool.

    .venv/bin/python benchmarks/bench_health.py                       # 0.25 simulated hours, ~10 min
    .venv/bin/python benchmarks/bench_health.py --hours 1 --only latency
    .venv/bin/python benchmarks/bench_health.py --only storage --mlflow-python .venv-bench/bin/python

(1) latency: N simulated hours of logging = N x 3,600 commits of ``--points`` metric points (one run,
    one commit per simulated second, driven through ``Lake.flush()`` back to back). Run twice: with
    automatic maintenance (the committer's ``AutoMaintainer``, called after every commit as the
    committer thread does) and without any. Reported: commit latency (median of the last 10% of
    commits), query latency (pyiceberg full scan, DuckDB ``GROUP BY`` over ``iceberg_scan``, and
    ``get_metric_history`` through lakeml's engine; median of 5, sampled every 10% of the run and
    averaged, worst sample shown too), each against the same table right after a full
    ``lake.maintain()`` ("freshly compacted", median of 5). Target: auto-maintained <= 1.5x fresh.
    Simulated time runs faster than real time, so ``lakeml.history.keep-all-ms`` is set to 0 (at one
    commit per real second its default of one minute keeps ~60 snapshots, which changes nothing here).
(2) storage: bytes on disk per million metric points (data + metadata + catalog) after maintenance,
    next to MLflow's SQLite store holding the same data set (benchmarks/datagen.py; MLflow needs the
    bench venv: ``--mlflow-python``). The issue measured 236 MB per 1M points for MLflow.
(3) durability window: the age of the oldest point of each batch at the moment its spool segment is
    fsynced, while a loop logs one point per millisecond (p50 / p99 / max), for two commit intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lakeml  # noqa: E402

RESULTS: list[dict] = []


def say(*a) -> None:
    print(*a, flush=True)


def median_time(fn, reps: int = 5) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def query_latencies(lake, run_id: str, reps: int = 5) -> dict[str, float]:
    from lakeml.query.extensions import new_connection

    con = new_connection()  # extensions loaded once, outside the timings

    def full_scan():
        lake.store.catalog.load_table(f"{lake.config.namespace}.metrics").scan().to_arrow()

    def group_by():
        loc = lake.store.catalog.load_table(f"{lake.config.namespace}.metrics").metadata_location
        con.execute(f"SELECT key, count(*), avg(value), max(step) FROM iceberg_scan('{loc}') GROUP BY key").fetchall()

    def history():
        lake.get_metric_history(run_id, "m0")

    out = {"full_scan_s": median_time(full_scan, reps), "group_by_s": median_time(group_by, reps),
           "history_s": median_time(history, reps)}
    con.close()
    return out


def simulate(tmp: Path, hours: float, points: int, auto: bool) -> dict:
    commits = max(50, int(hours * 3600))
    props = {"lakeml.maintenance.auto": "true" if auto else "false", "lakeml.history.keep-all-ms": "0"}
    lake = lakeml.connect(warehouse=tmp / ("auto" if auto else "none"), commit_interval=3600, **props)
    run = lake.create_run("health", run_name="long-run")
    keys = [f"m{k}" for k in range(10)]
    commit_s, maint_s, samples = [], 0.0, []
    t0 = time.perf_counter()
    step = 0
    for c in range(commits):
        for j in range(points):
            lake.log_metric(run.run_id, keys[j % len(keys)], 1.0 / (1 + step), step=step)
            step += 1
        t = time.perf_counter()
        lake.flush()
        commit_s.append(time.perf_counter() - t)
        if auto:
            t = time.perf_counter()
            lake.committer.maintainer.run_due()  # what the committer thread does after its commits
            maint_s += time.perf_counter() - t
        if (c + 1) % max(1, commits // 10) == 0:
            samples.append(query_latencies(lake, run.run_id, reps=5))
            say(f"    {'auto' if auto else 'none'}: {c + 1:>6}/{commits} commits, last commit "
                f"{commit_s[-1] * 1000:.0f} ms, {time.perf_counter() - t0:.0f}s elapsed")
    tail = commit_s[-max(10, commits // 10):]
    tbl = lake.store.reload("metrics")
    from lakeml.storage.compaction import files_per_partition, live_files

    out = {"mode": "auto" if auto else "none", "commits": commits, "points": step,
           "commit_ms": statistics.median(tail) * 1000, "first_commits_ms": statistics.median(commit_s[:50]) * 1000,
           "maintenance_s": maint_s, "snapshots": len(tbl.metadata.snapshots), "files": len(live_files(tbl)),
           "max_files_per_partition": max(files_per_partition(live_files(tbl)).values()),
           # query latency as users see it over the run: the mean of the samples taken every 10%
           **{k: statistics.mean(x[k] for x in samples) for k in samples[0]},
           "worst": {k: max(x[k] for x in samples) for k in samples[0]}}
    if auto:
        m = lake.committer.maintainer
        out.update(compactions=m.compactions, expiries=m.expiries)
    # the same table, freshly compacted
    t = time.perf_counter()
    lake.maintain()
    out["maintain_s"] = time.perf_counter() - t
    fresh_commits = []
    q = query_latencies(lake, run.run_id)
    for _ in range(30):
        for j in range(points):
            lake.log_metric(run.run_id, keys[j % len(keys)], 0.5, step=step)
            step += 1
        t = time.perf_counter()
        lake.flush()
        fresh_commits.append(time.perf_counter() - t)
    out["fresh"] = {"commit_ms": statistics.median(fresh_commits) * 1000, **q}
    lake.close()
    return out


def bench_latency(args) -> None:
    say(f"\n(1) latency after {args.hours} simulated hours ({int(args.hours * 3600)} commits of {args.points} points)")
    with tempfile.TemporaryDirectory() as d:
        modes = [True] if args.skip_unmaintained else [True, False]
        for auto in modes:
            r = simulate(Path(d), args.hours, args.points, auto)
            f = r["fresh"]
            say(f"  {r['mode']}: {r['snapshots']} snapshots, {r['files']} data files "
                f"(max {r['max_files_per_partition']}/partition), maintenance in the committer {r['maintenance_s']:.1f}s")
            for k, unit in (("commit_ms", "ms"), ("full_scan_s", "s"), ("group_by_s", "s"), ("history_s", "s")):
                ratio = r[k] / f[k] if f[k] else float("nan")
                target = " (target <= 1.5x)" if r["mode"] == "auto" else ""
                worst = f"  (worst sample {r['worst'][k]:.4f} {unit})" if k in r["worst"] else ""
                say(f"    {k:<12} {r[k]:9.4f} {unit}  fresh {f[k]:9.4f} {unit}  ratio {ratio:5.2f}x{target}{worst}")
                RESULTS.append({"bench": "latency", "mode": r["mode"], "metric": k, "value": r[k],
                                "fresh": f[k], "ratio": ratio})
            RESULTS.append({"bench": "latency_detail", **r})


def dir_bytes(path: Path, skip: str = ".lakeml-spool") -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [x for x in dirs if x != skip]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def live_bytes(lake) -> int:
    """Bytes of every table's current state: data files, manifests, manifest list, metadata file."""
    from lakeml.storage.maintenance import existing_tables

    total = 0
    for name in existing_tables(lake.store):
        tbl = lake.store.reload(name)
        io = tbl.io
        total += len(io.new_input(tbl.metadata_location))
        snap = tbl.current_snapshot()
        if snap is None:
            continue
        total += len(io.new_input(snap.manifest_list))
        for mf in snap.manifests(io):
            total += mf.manifest_length
            total += sum(e.data_file.file_size_in_bytes for e in mf.fetch_manifest_entry(io, discard_deleted=True))
    return total


MLFLOW_SCRIPT = r"""
import os, sys, time, json
sys.path.insert(0, sys.argv[3])
from benchmarks.datagen import Shape, load_mlflow
from mlflow.tracking import MlflowClient
db = os.path.join(sys.argv[1], "mlflow.db")
client = MlflowClient(tracking_uri=f"sqlite:///{db}")
shape = Shape(runs=int(sys.argv[2]), params=20, metrics=10, steps=100)
t = time.time()
load_mlflow(client, shape)
print(json.dumps({"bytes": os.path.getsize(db), "points": shape.runs * 1000, "seconds": time.time() - t}))
"""


def bench_storage(args) -> None:
    from benchmarks.datagen import Shape, load_lakeml

    runs = args.storage_points // 1000
    say(f"\n(2) storage for {runs * 1000:,} metric points ({runs} runs x 10 metrics x 100 steps, 20 params each)")
    with tempfile.TemporaryDirectory() as d:
        wh = Path(d) / "wh"
        lake = lakeml.connect(warehouse=wh)
        t = time.perf_counter()
        load_lakeml(lake, Shape(runs=runs, params=20, metrics=10, steps=100))
        load_s = time.perf_counter() - t
        before = dir_bytes(wh)
        lake.maintain(now=datetime.now(timezone.utc) + timedelta(days=8))
        after = dir_bytes(wh)
        live = live_bytes(lake) + (wh / "catalog.db").stat().st_size
        lake.close()
        per_m = live / (runs * 1000) * 1_000_000
        say(f"  lakeml: {before / 1e6:.1f} MB on disk as logged; after maintenance {after / 1e6:.1f} MB on disk "
            f"(the pre-compaction files stay while time travel keeps their snapshots), of which the current "
            f"state is {live / 1e6:.1f} MB = {per_m / 1e6:.1f} MB per 1M points (load {load_s:.1f}s)")
        RESULTS.append({"bench": "storage", "store": "lakeml", "bytes_live": live, "bytes_on_disk": after,
                        "bytes_as_logged": before, "points": runs * 1000, "mb_per_million": per_m / 1e6})
    mlflow_py = args.mlflow_python
    if mlflow_py and Path(mlflow_py).exists():
        mruns = max(1, args.mlflow_points // 1000)
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([mlflow_py, "-c", MLFLOW_SCRIPT, d, str(mruns), str(ROOT)], capture_output=True,
                                 text=True, timeout=7200)
            if out.returncode != 0:
                say(f"  mlflow failed: {out.stderr[-800:]}")
                return
            m = json.loads(out.stdout.strip().splitlines()[-1])
        mper = m["bytes"] / m["points"] * 1_000_000
        say(f"  MLflow SQLite: {m['bytes'] / 1e6:.1f} MB for {m['points']:,} points = {mper / 1e6:.1f} MB per 1M "
            f"(issue's measurement: 236 MB); lakeml is {mper / per_m:.0f}x smaller")
        RESULTS.append({"bench": "storage", "store": "mlflow-sqlite", "bytes": m["bytes"], "points": m["points"],
                        "mb_per_million": mper / 1e6, "ratio_vs_lakeml": mper / per_m})
    else:
        say(f"  MLflow: not run (no --mlflow-python); the issue measured 236 MB per 1M points, "
            f"{236e6 / per_m:.0f}x lakeml's")


def bench_durability(args) -> None:
    say("\n(3) durability window: age of a batch's oldest point when its spool segment is fsynced")
    for interval in (1.0, 0.2):
        with tempfile.TemporaryDirectory() as d:
            lake = lakeml.connect(warehouse=Path(d) / "wh", commit_interval=interval)
            run = lake.create_run("durability")
            spool = lake.committer.spool
            windows, writes = [], []
            real_write = spool.write

            def timed_write(batch, _w=real_write):
                t = time.perf_counter()
                _w(batch)
                writes.append(time.perf_counter() - t)
                if batch.table == "metrics" and batch.data.num_rows:
                    oldest = batch.data.column("timestamp").cast("int64").to_pylist()
                    windows.append((time.time_ns() // 1000 - min(oldest)) / 1e6)

            spool.write = timed_write
            end = time.monotonic() + args.durability_seconds
            i = 0
            while time.monotonic() < end:
                lake.log_metric(run.run_id, "loss", float(i), step=i)
                i += 1
                time.sleep(0.001)
            lake.close()
            windows.sort()
            writes.sort()
            p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
            say(f"  commit_interval={interval}s: {i} points in {len(windows)} batches; window p50 "
                f"{p(windows, .5) * 1000:.0f} ms, p99 {p(windows, .99) * 1000:.0f} ms, max {windows[-1] * 1000:.0f} ms;"
                f" spool write (fsync) p50 {p(writes, .5) * 1000:.1f} ms, p99 {p(writes, .99) * 1000:.1f} ms")
            RESULTS.append({"bench": "durability", "commit_interval": interval, "points": i,
                            "window_p50_s": p(windows, .5), "window_p99_s": p(windows, .99),
                            "window_max_s": windows[-1], "spool_write_p50_s": p(writes, .5),
                            "spool_write_p99_s": p(writes, .99)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=0.25, help="simulated hours of logging (x 3,600 commits)")
    ap.add_argument("--points", type=int, default=50, help="metric points per commit")
    ap.add_argument("--skip-unmaintained", action="store_true", help="only the auto-maintained lake")
    ap.add_argument("--storage-points", type=int, default=1_000_000)
    ap.add_argument("--mlflow-points", type=int, default=100_000, help="MLflow is slow: extrapolated per 1M")
    ap.add_argument("--mlflow-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    ap.add_argument("--durability-seconds", type=float, default=10.0)
    ap.add_argument("--only", default="latency,storage,durability")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "latency" in only:
        bench_latency(args)
    if "storage" in only:
        bench_storage(args)
    if "durability" in only:
        bench_durability(args)
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=2, default=str))


if __name__ == "__main__":
    main()
