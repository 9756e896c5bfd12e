"""Write-path benchmark: lakeml next to MLflow (SQLite backend) on the same workloads.

Run it with the interpreter that has both installed::

    /work/main/.venv-bench/bin/python benchmarks/bench_tracking.py            # everything (~15-30 min)
    /work/main/.venv-bench/bin/python benchmarks/bench_tracking.py --quick    # smaller sizes (~3 min)
    /work/main/.venv-bench/bin/python benchmarks/bench_tracking.py --only a,b,e

Workloads (issue 2):

(a) ``log_metric`` in a loop: µs per call (lakeml: buffered; MLflow: one SQL transaction per call).
(b) 1M points, *durable* throughput: the clock stops when ``flush()`` has returned, i.e. the points
    are committed to Iceberg. lakeml columnar ``log_batch`` (numpy arrays) locally and on S3
    (moto's server over HTTP), and a plain ``log_metric`` loop; MLflow ``log_batch`` (1,000 per call).
(c) W3: 2,000 runs x 20 params x 5 tags x 10 metrics x 100 steps through the fluent API in one process,
    each run ended normally (its rows handed to the spool); the clock stops when every row is committed.
    MLflow the same calls (its sizes are smaller by default and extrapolated linearly).
(d) 4 concurrent writer processes, one run each, into one store: aggregate committed points/s.
(e) ``python -c "import lakeml"`` wall time (median of 7), next to ``import mlflow``.
(f) 200 processes one after the other, one W3 run each: each process's wall time next to a bare
    ``import lakeml`` plus the same loop, with the spool left to the background helper at exit (the
    default) and, on fewer processes, committing at exit (``LAKEML_EXIT_DRAIN=inline``).
(g) 300 W3 runs in one process, each ended before the next: wall time start to exit, and bytes on
    disk once the process has exited (no manual ``maintain``), next to MLflow.

lakeml runs with its defaults (embedded warehouse or SQL catalog, spool on, automatic maintenance
on). Timings are single runs unless stated; the machine is whatever you run it on (2 cores here),
so compare the ratios, and re-run on a quiet machine before quoting absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"a": ("<=", 4.0, "µs/call"), "b_local": (">=", 1_000_000, "points/s"),
           "b_s3": (">=", 300_000, "points/s"), "e": ("<=", 0.2, "s"), "c": ("<=", 10.0, "s"),
           "f": ("<=", 0.3, "s")}
RESULTS: list[dict] = []


def record(workload: str, what: str, lakeml_v: float | None, mlflow_v: float | None, unit: str,
           higher_is_better: bool, target: str = "", note: str = "") -> None:
    ratio = None
    if lakeml_v and mlflow_v:
        ratio = lakeml_v / mlflow_v if higher_is_better else mlflow_v / lakeml_v
    met = ""
    if target in TARGETS and lakeml_v is not None:
        op, val, _ = TARGETS[target]
        met = "yes" if (lakeml_v <= val if op == "<=" else lakeml_v >= val) else "NO"
    row = {"workload": workload, "what": what, "lakeml": lakeml_v, "mlflow": mlflow_v, "unit": unit,
           "lakeml_x_faster": ratio, "target": f"{TARGETS[target][0]} {TARGETS[target][1]:,}" if target else "",
           "target_met": met, "note": note}
    RESULTS.append(row)
    print(f"  {workload:<3} {what:<52} lakeml {_fmt(lakeml_v):>12}  mlflow {_fmt(mlflow_v):>12} {unit:<9}"
          f" {'x' + _fmt(ratio) if ratio else '':>9} {met}", flush=True)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _tmp(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))


def _quiet_mlflow() -> None:
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _mlflow(dirpath: Path):
    _quiet_mlflow()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{dirpath / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    return mlflow


# -- (a) ----------------------------------------------------------------------------------------
def bench_a(args) -> None:
    import lakeml

    d = _tmp("a")
    lake = lakeml.connect(warehouse=d / "wh")
    lakeml.set_lake(lake)
    n = args.a_points
    with lakeml.start_run(experiment="a"):
        lakeml.log_metric("warm", 0.0)
        lakeml.flush()
        t = time.perf_counter()
        for step in range(n):
            lakeml.log_metric("loss", 0.5, step=step)
        lk_us = (time.perf_counter() - t) / n * 1e6
    lakeml.set_lake(None)
    lake.close()

    ml = _mlflow(d)
    m = args.a_mlflow_points
    with ml.start_run():
        ml.log_metric("warm", 0.0)
        t = time.perf_counter()
        for step in range(m):
            ml.log_metric("loss", 0.5, step=step)
        ml_us = (time.perf_counter() - t) / m * 1e6
    record("a", f"fluent log_metric loop ({n:,} / MLflow {m:,} calls)", lk_us, ml_us, "µs/call", False, "a")
    shutil.rmtree(d, ignore_errors=True)


# -- (b) ----------------------------------------------------------------------------------------
def _columnar_throughput(lake, n: int, reps: int) -> float:
    import numpy as np

    run = lake.create_run("b")
    lake.log_metric(run.run_id, "warm", 0.0)
    lake.flush()
    values, steps = np.random.default_rng(0).random(n), np.arange(n, dtype=np.int64)
    rates = []
    for r in range(reps):
        t = time.perf_counter()
        lake.log_batch(run.run_id, metrics={"key": f"loss{r}", "value": values, "step": steps})
        lake.flush()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def bench_b(args, s3=None) -> None:
    import lakeml

    n = args.b_points
    d = _tmp("b")
    with lakeml.connect(warehouse=d / "wh") as lake:
        local = _columnar_throughput(lake, n, args.reps)
        run = lake.create_run("b-loop")
        lake.flush()
        t = time.perf_counter()
        for step in range(n):
            lake.log_metric(run.run_id, "loss", 0.5, step)
        lake.flush()
        loop = n / (time.perf_counter() - t)

    ml = _mlflow(d)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    m = args.b_mlflow_points
    with ml.start_run() as r:
        now = int(time.time() * 1000)
        pts = [Metric("loss", 0.5, now, i) for i in range(m)]
        client.log_batch(r.info.run_id, metrics=pts[:10])
        t = time.perf_counter()
        for a in range(0, m, 1000):
            client.log_batch(r.info.run_id, metrics=pts[a:a + 1000])
        ml_rate = m / (time.perf_counter() - t)
    record("b", f"{n:,} points, log_batch (columnar) + flush, local", local, ml_rate, "points/s", True, "b_local",
           f"median of {args.reps}; MLflow log_batch x1000, {m:,} points")
    record("b", f"{n:,} points, log_metric loop + flush, local", loop, ml_rate, "points/s", True)
    if s3 is not None:
        with lakeml.connect(**s3.lake_kwargs(d)) as lake:
            rate = _columnar_throughput(lake, n, args.reps)
        record("b", f"{n:,} points, log_batch (columnar) + flush, S3 (moto)", rate, None, "points/s", True, "b_s3")
    shutil.rmtree(d, ignore_errors=True)


# -- (c) W3, (f) one process per run, (g) storage of a sweep -----------------------------------------
P, T, M, S = 20, 5, 10, 100  # the W3 run: params, tags, metrics, steps


def _w3_run(api, r: int) -> None:
    """One W3 run through a fluent API (lakeml or mlflow): the same calls, the same values."""
    with api.start_run(run_name=f"r{r}"):
        api.log_params({f"p{i}": f"v{(r * 7 + i) % 13}" for i in range(P)})
        api.set_tags({f"t{i}": f"x{r % 3}" for i in range(T)})
        for s in range(S):
            api.log_metrics({f"m{k}": s * 0.01 + k for k in range(M)}, step=s)


def _cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bench_c(args) -> None:
    """W3: 2,000 runs in one process, each ended normally; the clock stops once every row is committed."""
    import lakeml

    runs = args.c_runs
    d = _tmp("c")
    lake = lakeml.connect(warehouse=d / "wh")
    lakeml.set_lake(lake)
    cpu0, t0 = _cpu(), time.perf_counter()
    ends = []
    for r in range(runs):
        with lakeml.start_run(experiment="sweep", run_name=f"r{r}"):
            lakeml.log_params({f"p{i}": f"v{(r * 7 + i) % 13}" for i in range(P)})
            lakeml.set_tags({f"t{i}": f"x{r % 3}" for i in range(T)})
            for s in range(S):
                lakeml.log_metrics({f"m{k}": s * 0.01 + k for k in range(M)}, step=s)
            t_end = time.perf_counter()
        ends.append(time.perf_counter() - t_end)
    swept = time.perf_counter() - t0
    lake.flush()  # every row committed
    secs, cpu = time.perf_counter() - t0, _cpu() - cpu0
    stats = lake.committer.stats
    lakeml.set_lake(None)
    df = lake.search_runs("sweep", max_results=runs + 1)
    assert df.height == runs and set(df["status"].to_list()) == {"FINISHED"}, "a run is missing or unfinished"
    lake.close()

    ml = _mlflow(d)
    mr = args.c_mlflow_runs
    t = time.perf_counter()
    for r in range(mr):
        _w3_run(ml, r)
    ml_secs = (time.perf_counter() - t) / mr * runs
    record("c", f"W3: {runs:,} runs x {P}p x {T}t x {M}m x {S} steps, one process, all committed", secs, ml_secs,
           "s", False, "c", f"MLflow measured on {mr} runs, extrapolated; lakeml {stats.commits} commits")
    record("c", "  same, process CPU time (user + sys; lakeml's threads included)", cpu, None, "s", False)
    record("c", "  same, until the sweep's last run had ended (rows handed off)", swept, None, "s", False)
    record("c", "  same, Iceberg commits for the whole sweep", stats.commits, None, "commits", False, "",
           f"{runs * 4:,} when every run end waited for its own commits")
    record("c", "  same, median time in end_run (leaving the with block)", statistics.median(ends) * 1000, None,
           "ms", False)
    shutil.rmtree(d, ignore_errors=True)


PROC_SCRIPT = r"""
import sys
mode, target = sys.argv[1], sys.argv[2]
P, T, M, S = 20, 5, 10, 100
if mode == "bare":  # import lakeml and the same training loop, nothing logged
    import lakeml
    params = {f"p{i}": f"v{(7 + i) % 13}" for i in range(P)}
    tags = {f"t{i}": "x1" for i in range(T)}
    for s in range(S):
        m = {f"m{k}": s * 0.01 + k for k in range(M)}
    sys.exit(0)
if mode == "lakeml":
    import lakeml as api
    api.set_lake(api.connect(warehouse=target))
    run = api.start_run(experiment="procs", run_name="one")
else:
    import logging, os, warnings
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import mlflow as api
    api.set_tracking_uri(f"sqlite:///{target}/mlflow.db")
    api.set_experiment("procs")
    run = api.start_run(run_name="one")
with run:
    api.log_params({f"p{i}": f"v{(7 + i) % 13}" for i in range(P)})
    api.set_tags({f"t{i}": "x1" for i in range(T)})
    for s in range(S):
        api.log_metrics({f"m{k}": s * 0.01 + k for k in range(M)}, step=s)
"""


def _proc_times(script: Path, mode: str, target: str, n: int, env: dict | None = None) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, str(script), mode, target], check=True, env=env or os.environ)
        times.append(time.perf_counter() - t)
    return times


def _wait_drained(root: Path, timeout: float = 600) -> float:
    """Seconds until no spool of an exited process is left under ``root`` (background drain)."""
    from lakeml.storage.drain import wait_for_drains

    t = time.perf_counter()
    if wait_for_drains(root, timeout):
        return time.perf_counter() - t
    raise RuntimeError(f"spools under {root} not drained within {timeout}s")


def bench_f(args) -> None:
    """One run per process, processes one after the other: each process's wall time next to a bare
    ``import lakeml`` plus the same loop; lakeml leaving the spool to the background helper at exit
    (default) and committing at exit (LAKEML_EXIT_DRAIN=inline)."""
    import lakeml

    d = _tmp("f")
    script = d / "proc.py"
    script.write_text(PROC_SCRIPT)
    with lakeml.connect(warehouse=d / "wh") as lake:
        lake.init()
        root = lake.committer.spool.root
    n, ni, nm = args.f_procs, args.f_inline_procs, args.f_mlflow_procs
    bare = statistics.median(_proc_times(script, "bare", "", max(5, n // 10)))
    bg_env = {k: v for k, v in os.environ.items() if k != "LAKEML_EXIT_DRAIN"}  # the default
    t = time.perf_counter()
    bg = _proc_times(script, "lakeml", str(d / "wh"), n, bg_env)
    wall_bg = time.perf_counter() - t
    drained = _wait_drained(root)
    inline = _proc_times(script, "lakeml", str(d / "wh"), ni, {**os.environ, "LAKEML_EXIT_DRAIN": "inline"})
    with lakeml.connect(warehouse=d / "wh") as lake:
        df = lake.search_runs("procs", max_results=n + ni + 1)
        assert df.height == n + ni and set(df["status"].to_list()) == {"FINISHED"}, "a run is missing"
    ml = statistics.median(_proc_times(script, "mlflow", str(d), nm))
    med_bg, med_in = statistics.median(bg), statistics.median(inline)
    record("f", f"{n} processes x 1 W3 run, default (background drain): median wall per process", med_bg, ml, "s", False, "",
           f"all committed {drained:.1f}s after the last exit; {n} processes took {wall_bg:.0f}s")
    record("f", "  same, minus bare `import lakeml` + the same loop", med_bg - bare, ml - bare, "s", False, "f",
           f"bare: {bare:.3f}s")
    record("f", f"  {ni} processes, LAKEML_EXIT_DRAIN=inline (commit at exit): median wall per process", med_in, ml, "s", False)
    record("f", "  same, minus bare `import lakeml` + the same loop", med_in - bare, ml - bare, "s", False, "f")
    shutil.rmtree(d, ignore_errors=True)


SWEEP_SCRIPT = r"""
import sys, time
mode, target, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
P, T, M, S = 20, 5, 10, 100
if mode == "lakeml":
    import lakeml as api
    api.set_lake(api.connect(warehouse=target))
    start = lambda r: api.start_run(experiment="sweep", run_name=f"r{r}")
else:
    import logging, os, warnings
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import mlflow as api
    api.set_tracking_uri(f"sqlite:///{target}/mlflow.db")
    api.set_experiment("sweep")
    start = lambda r: api.start_run(run_name=f"r{r}")
for r in range(runs):
    with start(r):
        api.log_params({f"p{i}": f"v{(r * 7 + i) % 13}" for i in range(P)})
        api.set_tags({f"t{i}": f"x{r % 3}" for i in range(T)})
        for s in range(S):
            api.log_metrics({f"m{k}": s * 0.01 + k for k in range(M)}, step=s)
"""


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_g(args) -> None:
    """300 W3 runs in one process, each ended before the next starts: wall time (process start to exit,
    so lakeml's commit at exit is included) and bytes on disk once the process has exited."""
    d = _tmp("g")
    script = d / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    runs, mr = args.g_runs, args.g_mlflow_runs
    t = time.perf_counter()
    subprocess.run([sys.executable, str(script), "lakeml", str(d / "wh"), str(runs)], check=True)
    lk_secs = time.perf_counter() - t
    lk_bytes = _bytes(d / "wh")
    (d / "ml").mkdir()
    t = time.perf_counter()
    subprocess.run([sys.executable, str(script), "mlflow", str(d / "ml"), str(mr)], check=True)
    ml_secs = (time.perf_counter() - t) * runs / mr
    ml_bytes = _bytes(d / "ml") * runs / mr
    note = "" if mr == runs else f"MLflow measured on {mr} runs, extrapolated"
    record("g", f"{runs} W3 runs, each ended before the next: wall, start to exit", lk_secs, ml_secs, "s", False, "",
           note)
    record("g", "  same, bytes on disk after exit (no manual maintain)", lk_bytes / 1e6, ml_bytes / 1e6, "MB", False,
           "", f"target lakeml <= 1/4 of MLflow: {'met' if lk_bytes * 4 <= ml_bytes else 'NOT met'}")
    shutil.rmtree(d, ignore_errors=True)


# -- (d) ----------------------------------------------------------------------------------------
def worker(kind: str, target: str, index: int, n: int) -> None:
    """One writer process of (d); prints JSON with its start and end (committed) time."""
    if kind == "lakeml":
        import lakeml

        spec = json.loads(target)
        lake = lakeml.connect(**spec) if "uri" in spec else lakeml.connect(warehouse=spec["warehouse"])
        run = lake.create_run("concurrent", run_name=f"w{index}")
        lake.flush()
        t0 = time.time()
        for i in range(n):
            lake.log_metric(run.run_id, "loss", index * 1e7 + i, i)
        lake.set_terminated(run.run_id)  # flushes
        t1 = time.time()
        lake.close()
        errors = 0
    else:
        ml = _mlflow(Path(target))
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        errors = 0
        with ml.start_run(run_name=f"w{index}") as r:
            now = int(time.time() * 1000)
            pts = [Metric("loss", index * 1e7 + i, now, i) for i in range(n)]
            t0 = time.time()
            for a in range(0, n, 1000):
                for attempt in range(50):
                    try:
                        client.log_batch(r.info.run_id, metrics=pts[a:a + 1000])
                        break
                    except Exception:  # noqa: BLE001 - "database is locked" under concurrency
                        errors += 1
                        time.sleep(0.05)
            t1 = time.time()
    print(json.dumps({"t0": t0, "t1": t1, "n": n, "errors": errors}), flush=True)


def _run_workers(kind: str, target: str, procs: int, n: int) -> tuple[float, float, int]:
    started = time.time()
    ps = [subprocess.Popen([sys.executable, __file__, "--worker", kind, target, str(i), str(n)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(procs)]
    outs = []
    for p in ps:
        out, err = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"{kind} worker failed:\n{err[-3000:]}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.time() - started
    window = max(o["t1"] for o in outs) - min(o["t0"] for o in outs)
    return procs * n / window, procs * n / wall, sum(o["errors"] for o in outs)


def bench_d(args) -> None:
    import lakeml

    d = _tmp("d")
    with lakeml.connect(warehouse=d / "wh") as lake:
        lake.init()
    n = args.d_points
    lk_rate, lk_wall, _ = _run_workers("lakeml", json.dumps({"warehouse": str(d / "wh")}), 4, n)
    with lakeml.connect(warehouse=d / "wh") as lake:
        counts = lake.engine.arrow("SELECT count(*) AS n FROM lakeml.metrics WHERE key = 'loss'",
                                   tables=["metrics"]).to_pylist()[0]["n"]
    assert counts == 4 * n, f"lost or duplicated points: {counts} != {4 * n}"
    _mlflow(d)  # create the database and experiment before the race
    m = args.d_mlflow_points
    ml_rate, ml_wall, errors = _run_workers("mlflow", str(d), 4, m)
    record("d", f"4 writer processes, log_metric loop x {n:,} each (MLflow log_batch x {m:,})", lk_rate, ml_rate,
           "points/s", True, "", f"committed points / logging window; MLflow retried {errors} locked batches")
    record("d", "  same, including interpreter start and connect", lk_wall, ml_wall, "points/s", True)
    shutil.rmtree(d, ignore_errors=True)


# -- (e) ----------------------------------------------------------------------------------------
def _import_seconds(stmt: str, reps: int = 7) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_e(args) -> None:
    bare = _import_seconds("pass")
    lk = _import_seconds("import lakeml")
    ml = _import_seconds("import mlflow")
    record("e", 'python -c "import lakeml" (wall, median of 7)', lk, ml, "s", False, "e",
           f"bare interpreter start: {bare:.3f}s")
    record("e", "  import only (minus interpreter start)", lk - bare, ml - bare, "s", False)


# -- S3 server ------------------------------------------------------------------------------------
class Moto:
    """moto's standalone S3 server, from whichever interpreter has moto (this one or the repo's .venv)."""

    def __init__(self) -> None:
        py = sys.executable
        if subprocess.run([py, "-c", "import moto.server"], capture_output=True).returncode != 0:
            py = str(ROOT / ".venv" / "bin" / "python")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([py, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="bench")

    def lake_kwargs(self, d: Path) -> dict:
        return {"uri": f"sqlite:///{d / 's3-catalog.db'}", "warehouse": "s3://bench/wh",
                "s3.endpoint": self.endpoint, "s3.access-key-id": "testing", "s3.secret-access-key": "testing",
                "s3.region": "us-east-1", "s3.path-style-access": "true", "lakeml.spool-dir": str(d / "spool")}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="a,b,c,d,e,f,g", help="comma-separated workloads")
    ap.add_argument("--quick", action="store_true", help="smaller sizes for a fast look")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--c-runs", type=int, default=None)
    ap.add_argument("--f-procs", type=int, default=None, help="processes of (f), one run each")
    ap.add_argument("--g-mlflow-runs", type=int, default=None, help="MLflow runs of (g) (fewer: extrapolated)")
    args = ap.parse_args()
    q = args.quick
    args.reps = 3
    args.a_points, args.a_mlflow_points = (100_000, 100) if q else (1_000_000, 500)
    args.b_points, args.b_mlflow_points = (1_000_000, 10_000) if q else (1_000_000, 50_000)
    args.c_runs = args.c_runs or (200 if q else 2000)
    args.c_mlflow_runs = 5 if q else 20
    f_procs, args.f_inline_procs, args.f_mlflow_procs = (20, 5, 5) if q else (200, 20, 20)
    args.f_procs = args.f_procs or f_procs
    args.g_runs, g_mlflow_runs = (30, 10) if q else (300, 300)
    args.g_mlflow_runs = args.g_mlflow_runs or g_mlflow_runs
    args.d_points, args.d_mlflow_points = (100_000, 5_000) if q else (250_000, 20_000)
    only = set(args.only.split(","))
    try:
        import mlflow  # noqa: F401
    except ImportError:
        sys.exit("mlflow is not installed here; run with /work/main/.venv-bench/bin/python")
    import lakeml

    print(f"lakeml {lakeml.__version__}, mlflow {__import__('mlflow').__version__}, python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    s3 = Moto() if "b" in only else None
    try:
        for key, fn in (("e", bench_e), ("a", bench_a), ("b", lambda a: bench_b(a, s3)), ("d", bench_d),
                        ("c", bench_c), ("f", bench_f), ("g", bench_g)):
            if key in only:
                print(f"({key})", flush=True)
                fn(args)
    finally:
        if s3 is not None:
            s3.stop()
    print("\n| workload | what | lakeml | MLflow | unit | lakeml × faster | target | met |")
    print("|---|---|---:|---:|---|---:|---|---|")
    for r in RESULTS:
        print(f"| {r['workload']} | {r['what'].strip()} | {_fmt(r['lakeml'])} | {_fmt(r['mlflow'])} | {r['unit']} | "
              f"{_fmt(r['lakeml_x_faster']) if r['lakeml_x_faster'] else ''} | {r['target']} | {r['target_met']} |")
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
