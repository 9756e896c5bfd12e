"""lakeml server vs ``mlflow server`` (SQLite backend), side by side, same client workload over HTTP.

Both servers run on this machine on loopback; the client is the stock ``MlflowClient`` for both.

(a) ``log_batch`` throughput (1000 metrics per request, MLflow's per-request limit), points/s.
(b) load: ``--runs`` concurrent runs (threads), each logging ``--rate`` metric points/s in
    ``--batches`` log_batch calls per second, for ``--duration`` seconds; p50/p99 request latency,
    then every point is read back (metrics/get-history) and counted: each must be there exactly once.
(c) ``search_runs`` latency over ``--search-runs`` runs via REST (filter + order_by, 100 per page).
(d) lakeml only: ``kill -9`` the server mid-load, restart it on the same port; the clients retry
    (log_batch has no idempotency key in MLflow's protocol, so a batch whose ack was lost can be stored
    twice: the count says how many). Points lost / duplicated are printed.

    .venv/bin/python benchmarks/bench_server.py --quick       # ~2 minutes
    .venv/bin/python benchmarks/bench_server.py               # the issue's sizes (5-minute load)

Numbers and ratios are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the benchmark retries itself, visibly
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import group_cpu  # noqa: E402 - CPU seconds of a process group (the server's processes)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class Server:
    def __init__(self, kind: str, base: Path, port: int | None = None):
        self.kind, self.base = kind, base
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        if self.kind == "lakeml":
            cmd = [sys.executable, "-m", "lakeml.server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--warehouse", str(self.base / "wh")]
        else:
            cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.base / 'mlflow.db'}",
                   "--artifacts-destination", str(self.base / "mlartifacts"), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1"]
        log = open(self.base / f"{self.kind}-server.log", "ab")
        # mlflow 3 also starts a job runner and seven huey consumers (GenAI jobs, not tracking): they would take
        # the cores from its tracking server while they start, so they are switched off (fair to mlflow)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True,
                                     env=env)
        return wait_http(self.url + "/health", self.proc, timeout=180)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


def retry(fn, *args, tries: int = 600, **kw):
    """Call ``fn`` until it succeeds (the server may be down for a while); returns (result, attempts)."""
    for attempt in range(1, tries + 1):
        try:
            return fn(*args, **kw), attempt
        except Exception:
            if attempt == tries:
                raise
            time.sleep(min(0.05 * attempt, 0.5))
    raise AssertionError("unreachable")


SERVER_MS: list[float] = []  # lakeml's Server-Timing of each log-batch response: latency at the server


def capture_server_timing() -> None:
    """Record the ``Server-Timing`` header that lakeml server adds to each response (the MLflow
    client talks through ``requests``): the load's latency *at the server*, without client queueing."""
    import requests

    if getattr(requests.sessions.Session.send, "_lakeml_timing", False):
        return
    orig = requests.sessions.Session.send

    def send(self, request, **kw):
        r = orig(self, request, **kw)
        st = r.headers.get("server-timing", "")
        if "dur=" in st and "log-batch" in (request.url or ""):
            SERVER_MS.append(float(st.split("dur=")[1].split(",")[0]))
        return r

    send._lakeml_timing = True
    requests.sessions.Session.send = send


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


# -- (a) -----------------------------------------------------------------------------------------
def bench_log_batch(url: str, points: int, pgid: int | None = None) -> tuple[float, float, float]:
    """(points/s through one stock MlflowClient, server CPU µs per point incl. its commits, client CPU µs
    per point)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    c = MlflowClient(url)
    eid = c.create_experiment(f"bench-batch-{time.time_ns()}")
    rid = c.create_run(eid).info.run_id
    now = int(time.time() * 1000)
    batches = [[Metric(f"m{j % 10}", float(i * 1000 + j), now, i * 100 + j // 10) for j in range(1000)]
               for i in range(max(1, points // 1000))]
    c.log_batch(rid, metrics=batches[0][:10])  # warm up the connection and the server's run cache
    idle = 0.0
    if pgid:  # the server's CPU while idle (background processes, timers), subtracted below
        i0 = group_cpu(pgid)
        time.sleep(3.0)
        idle = (group_cpu(pgid) - i0) / 3.0
    cpu0 = group_cpu(pgid) if pgid else 0.0
    t0, mine = time.perf_counter(), time.process_time()
    for b in batches:
        c.log_batch(rid, metrics=b)
    dt, mine = time.perf_counter() - t0, time.process_time() - mine
    time.sleep(2.5)  # the server's commits of these points (one per second at lakeml) land in its CPU time
    cpu = (group_cpu(pgid) - cpu0 - idle * (dt + 2.5)) if pgid else float("nan")
    c.set_terminated(rid)
    n = len(batches) * 1000
    return n / dt, cpu * 1e6 / n, mine * 1e6 / n


# -- (b) / (d) -----------------------------------------------------------------------------------------
class Load:
    """``runs`` threads, each with its own run, logging ``rate`` points/s in ``batches`` calls/s."""

    KEYS = 4

    def __init__(self, url: str, runs: int, rate: int, batches: int, duration: float, tag: str):
        from mlflow import MlflowClient

        self.url, self.runs, self.rate, self.batches, self.duration = url, runs, rate, batches, duration
        self.client = MlflowClient(url)
        self.eid = self.client.create_experiment(f"bench-load-{tag}-{time.time_ns()}")
        self.run_ids = [self.client.create_run(self.eid).info.run_id for _ in range(runs)]
        self.latencies: list[float] = []
        self.sent: dict[str, int] = {}  # run id -> points acknowledged
        self.retries = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def _worker(self, i: int) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        c = MlflowClient(self.url)
        rid = self.run_ids[i]
        per = max(self.KEYS, self.rate // self.batches // self.KEYS * self.KEYS)  # whole steps of every key
        interval = 1.0 / self.batches
        step = 0
        lat: list[float] = []
        next_t = time.monotonic() + (i / self.runs) * interval  # spread the clients over the interval
        end = time.monotonic() + self.duration
        while time.monotonic() < end and not self.stop.is_set():
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_t += interval
            now = int(time.time() * 1000)
            batch = [Metric(f"k{j % self.KEYS}", float(step + j // self.KEYS), now, step + j // self.KEYS)
                     for j in range(per)]
            step += per // self.KEYS
            t0 = time.perf_counter()
            try:
                _, attempts = retry(c.log_batch, rid, metrics=batch)
            except Exception as e:  # gave up: counted as lost
                with self._lock:
                    self.errors.append(f"{type(e).__name__}: {e}"[:200])
                continue
            took = time.perf_counter() - t0
            if attempts == 1:
                lat.append(took)
            with self._lock:
                self.retries += attempts - 1
                self.sent[rid] = self.sent.get(rid, 0) + len(batch)
        with self._lock:
            self.latencies += lat

    def run(self, during=None) -> float:
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(self.runs)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        if during is not None:
            during()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    def read_back(self) -> tuple[int, int, int]:
        """(points expected, distinct points found, duplicate points found) via metrics/get-history."""
        from mlflow import MlflowClient

        c = MlflowClient(self.url)
        expected = sum(self.sent.values())
        distinct = dupes = 0
        for rid in self.run_ids:
            for k in range(self.KEYS):
                hist, _ = retry(c.get_metric_history, rid, f"k{k}")
                points = [(m.step, m.value) for m in hist]
                distinct += len(set(points))
                dupes += len(points) - len(set(points))
        return expected, distinct, dupes


# -- (c) -----------------------------------------------------------------------------------------------
def seed_lakeml(wh: Path, n: int) -> str:
    """``n`` finished runs with params, metrics and tags, written natively (what the server then searches)."""
    import lakeml

    lake = lakeml.connect(warehouse=str(wh))
    try:
        for i in range(n):
            r = lake.create_run("bench-search", run_name=f"r{i}")
            lake.log_batch(r.run_id, metrics=_metrics(i), params=_params(i), tags=_tags(i))
            lake.set_terminated(r.run_id)
        lake.flush()
    finally:
        lake.close()
    return "bench-search"


def seed_mlflow(db: Path, artifacts: Path, n: int) -> None:
    """The same runs in an MLflow SQLite store, through MLflow's own SqlAlchemyStore (before the server starts)."""
    from mlflow.entities import RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{db}", str(artifacts))
    eid = store.create_experiment("bench-search")
    for i in range(n):
        r = store.create_run(eid, "bench", int(time.time() * 1000), [], f"r{i}")
        store.log_batch(r.info.run_id, metrics=_metrics(i), params=_params(i), tags=_tags(i))
        store.update_run_info(r.info.run_id, RunStatus.FINISHED, int(time.time() * 1000), None)
    store.engine.dispose()


def _metrics(i: int):
    from mlflow.entities import Metric  # lakeml's log_batch takes any objects with key, value, step, timestamp

    acc = (i * 7919 % 1000) / 1000
    return [Metric("acc", acc, timestamp=1, step=0), Metric("loss", 1 - acc, timestamp=1, step=0)]


def _params(i: int):
    from mlflow.entities import Param

    return [Param("opt", "adam" if i % 2 else "sgd"), Param("depth", str(i % 10))]


def _tags(i: int):
    from mlflow.entities import RunTag

    return [RunTag("team", "ml" if i % 3 else "data")]


def bench_search(url: str, repeats: int) -> tuple[float, float, int]:
    from mlflow import MlflowClient

    c = MlflowClient(url)
    eid = c.get_experiment_by_name("bench-search").experiment_id
    flt = "metrics.acc > 0.5 and params.opt = 'adam'"
    n = len(c.search_runs([eid], flt, order_by=["metrics.acc DESC"], max_results=100))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        c.search_runs([eid], flt, order_by=["metrics.acc DESC"], max_results=100)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), pct(times, 99), n


# -- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (~2 minutes)")
    ap.add_argument("--points", type=int, default=None, help="points for (a) (default 200k, quick 50k)")
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--rate", type=int, default=100, help="points per second per run")
    ap.add_argument("--batches", type=int, default=1, help="log_batch calls per second per run")
    ap.add_argument("--duration", type=float, default=None, help="seconds of load (default 300, quick 20)")
    ap.add_argument("--search-runs", type=int, default=None, help="runs to search (default 10000, quick 1000)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c,d,mlflow")
    args = ap.parse_args(argv)
    quick = args.quick
    points = args.points or (50_000 if quick else 200_000)
    duration = args.duration or (20.0 if quick else 300.0)
    n_search = args.search_runs or (1000 if quick else 10_000)
    skip = set(filter(None, args.skip.split(",")))
    kinds = ["lakeml"] + ([] if "mlflow" in skip else ["mlflow"])
    base = Path(tempfile.mkdtemp(prefix="bench-server-"))
    results: dict[str, dict[str, float]] = {k: {} for k in kinds}
    print(f"bench_server: {'quick' if quick else 'full'} mode, base {base}, cpus {os.cpu_count()}")
    try:
        for kind in kinds:
            d = base / kind
            d.mkdir()
            if "c" not in skip:
                t0 = time.perf_counter()
                if kind == "lakeml":
                    seed_lakeml(d / "wh", n_search)
                else:
                    seed_mlflow(d / "mlflow.db", d / "mlartifacts", n_search)
                print(f"[{kind}] seeded {n_search} runs for (c) in {time.perf_counter() - t0:.1f} s")
            srv = Server(kind, d)
            ready = srv.start()
            print(f"[{kind}] server ready in {ready:.2f} s at {srv.url}")
            try:
                if "a" not in skip:
                    pps, us, client_us = bench_log_batch(srv.url, points, srv.proc.pid)
                    results[kind].update(log_batch_pps=pps, server_us_per_point=us, client_us_per_point=client_us)
                    print(f"[{kind}] (a) log_batch: {pps:,.0f} points/s ({points:,} points, 1000 per request); "
                          f"server CPU {us:.2f} µs/point (capacity {1e6 / us:,.0f} points/s per core); "
                          f"client CPU {client_us:.1f} µs/point")
                if "c" not in skip:
                    p50, p99, n = bench_search(srv.url, 20 if quick else 50)
                    results[kind]["search_p50_ms"] = p50 * 1000
                    print(f"[{kind}] (c) search_runs over {n_search} runs ({n} match, 100 per page): "
                          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
                if "b" not in skip:
                    capture_server_timing()
                    SERVER_MS.clear()
                    load = Load(srv.url, args.runs, args.rate, args.batches, duration, kind)
                    took = load.run()
                    if SERVER_MS:
                        results[kind].update(server_p50_ms=pct(SERVER_MS, 50), server_p99_ms=pct(SERVER_MS, 99))
                        print(f"[{kind}] (b) latency at the server (Server-Timing, {len(SERVER_MS)} requests): "
                              f"p50 {pct(SERVER_MS, 50):.2f} ms, p99 {pct(SERVER_MS, 99):.2f} ms (bar: p99 <= 5 ms)")
                    lat = load.latencies
                    exp, got, dup = load.read_back()
                    results[kind].update(p50_ms=pct(lat, 50) * 1000, p99_ms=pct(lat, 99) * 1000,
                                         load_pps=exp / took)
                    print(f"[{kind}] (b) load {args.runs} runs x {args.rate} points/s for {duration:.0f} s: "
                          f"{len(lat)} requests, p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
                          f"max {max(lat, default=0) * 1000:.0f} ms; {exp / took:,.0f} points/s sustained; "
                          f"read back {got:,}/{exp:,} points, {dup} duplicated, {load.retries} retries, "
                          f"{len(load.errors)} failed")
                if kind == "lakeml" and "d" not in skip:
                    crash(srv, args, min(duration, 30.0))
            finally:
                srv.stop()
        if len(kinds) == 2:
            a, b = results["lakeml"], results["mlflow"]
            print("\nratios (lakeml server / mlflow server):")
            if "log_batch_pps" in a:
                print(f"  (a) log_batch throughput: {a['log_batch_pps'] / b['log_batch_pps']:.1f}x "
                      f"({a['log_batch_pps']:,.0f} vs {b['log_batch_pps']:,.0f} points/s; target >= 20x)")
                print(f"      server capacity (server CPU per point, commits included): "
                      f"{b['server_us_per_point'] / a['server_us_per_point']:.1f}x "
                      f"({a['server_us_per_point']:.2f} vs {b['server_us_per_point']:.2f} µs/point); one stock "
                      f"client cannot show it: MlflowClient itself spends {a['client_us_per_point']:.0f} µs of CPU "
                      "per point")
            if "p99_ms" in a:
                print(f"  (b) load p99 latency: {a['p99_ms']:.1f} ms vs {b['p99_ms']:.1f} ms "
                      f"({b['p99_ms'] / a['p99_ms']:.1f}x lower at lakeml; bar: p99 <= 5 ms); "
                      f"p50 {a['p50_ms']:.1f} vs {b['p50_ms']:.1f} ms")
            if "search_p50_ms" in a:
                print(f"  (c) search_runs p50: {a['search_p50_ms']:.1f} ms vs {b['search_p50_ms']:.1f} ms "
                      f"({b['search_p50_ms'] / a['search_p50_ms']:.1f}x faster at lakeml)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def crash(srv: Server, args, duration: float) -> None:
    """(d): kill -9 the lakeml server a third into a load, restart it on the same port, count every point."""
    load = Load(srv.url, min(args.runs, 16), args.rate, max(args.batches, 2), duration, "crash")
    down = {}

    def killer() -> None:
        time.sleep(duration / 3)
        srv.kill()
        t0 = time.perf_counter()
        time.sleep(1.0)
        srv.start()
        down["s"] = time.perf_counter() - t0

    took = load.run(during=killer)
    exp, got, dup = load.read_back()
    lost = exp - got
    print(f"[lakeml] (d) kill -9 mid-load ({load.runs} runs, {duration:.0f} s, down {down.get('s', 0):.1f} s): "
          f"{exp:,} points acknowledged, {got:,} read back, {max(lost, 0)} lost, {dup} duplicated "
          f"(batches re-sent after a lost ack), {load.retries} retries, {len(load.errors)} gave up; "
          f"{took:.1f} s")


if __name__ == "__main__":
    main()
