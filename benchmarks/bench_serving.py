"""Serving throughput and latency (issue 12): `lakeml models serve` (inference logging on and off)
against `mlflow models serve --env-manager local`, on the same sklearn model, machine and client.

    .venv/bin/python benchmarks/bench_serving.py                 # ~3 min
    .venv/bin/python benchmarks/bench_serving.py --rounds 5 --seconds 15 --json /tmp/serving.json

Each server is a subprocess with one worker on 127.0.0.1. The client is plain ``http.client``
with keep-alive (the lightest Python client): latency is measured with one client in sequence (p50,
p99), throughput with ``--concurrency`` client threads for ``--seconds`` (requests per second, and the
server's CPU per request over the same window, its commits included). lakeml with logging off and on
are started ``--rounds`` times, alternately, and the table shows medians: on this kind of machine two
runs of the same server differ by several percent. Each phase first sends a warm-up. The model is a LogisticRegression on 10 named float features, logged by lakeml (registered
as ``bench@champion``) and saved by MLflow (``mlflow.sklearn.save_model``) with the same signature.
Targets: lakeml with logging on >= MLflow's throughput; lakeml p99 <= 10 ms for 1-row requests.
On a busy machine all servers slow down alike: read the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(folder: Path):
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 10)), columns=[f"f{i}" for i in range(10)])
    y = (X.f0 + X.f1 - X.f2 > 0).astype(int)
    clf = LogisticRegression().fit(X, y)

    import lakeml

    lake = lakeml.connect(warehouse=folder / "wh")
    run = lake.create_run("bench")
    lake.log_model(run.run_id, clf, "model", signature=lakeml.infer_signature(X, clf.predict(X)))
    lake.set_terminated(run.run_id)
    mv = lake.register_model("bench", run_id=run.run_id)
    lake.set_alias("bench", "champion", mv.version)
    lake.close()

    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(clf, str(folder / "mlflow-model"), signature=infer_signature(X, clf.predict(X)))
    return X


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}  # mlflow runs `uvicorn` from PATH
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-2000:]}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise TimeoutError(f"{cmd} did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group (Linux /proc):
    what a server spends per request, which a busy machine does not inflate the way it does wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp), after pid and comm
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _client(port: int, body: bytes, n: int, lat: list[float], errors: list[int]) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("POST", "/invocations", body=body, headers=headers)
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            errors.append(r.status)
    c.close()


def measure(port: int, body: bytes, requests: int, concurrency: int, pgid: int, seconds: float) -> dict:
    """p50/p99 of ``requests`` sent in sequence; then requests per second and server CPU per request over
    ``seconds`` of ``concurrency`` clients (CPU measured over that same window: commits included)."""
    _client(port, body, max(50, requests // 10), [], [])  # warm-up
    lat: list[float] = []
    errors: list[int] = []
    _client(port, body, requests, lat, errors)
    lat.sort()
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    counts = [0] * concurrency
    stop = time.monotonic() + seconds

    def timed(i: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < stop:
            c.request("POST", "/invocations", body=body, headers=headers)
            r = c.getresponse()
            r.read()
            counts[i] += 1
            if r.status != 200:
                errors.append(r.status)
        c.close()

    threads = [threading.Thread(target=timed, args=(i,)) for i in range(concurrency)]
    cpu0, t0 = group_cpu(pgid), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    n = sum(counts)
    return {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "rps": round(n / elapsed, 1), "errors": len(errors),
            "cpu_ms": round((group_cpu(pgid) - cpu0) * 1000 / max(n, 1), 3)}


def median_of(runs: list[dict]) -> dict:
    """Per key, the median over repeated rounds."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1500, help="latency phase: requests sent in sequence (1-row; "
                                                                "100-row sends a fifth)")
    ap.add_argument("--seconds", type=float, default=10.0, help="throughput phase: seconds of load per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of lakeml logging off/on, alternated (medians)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    X = make_model(tmp)
    bodies = {
        "1 row": json.dumps({"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:1].values.tolist()}}),
        "100 rows": json.dumps({"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:100].values.tolist()}}),
    }
    wh = str(tmp / "wh")
    servers = {
        "mlflow": lambda p: [str(BIN / "mlflow"), "models", "serve", "-m", str(tmp / "mlflow-model"), "--env-manager",
                             "local", "-h", "127.0.0.1", "-p", str(p), "-w", "1"],
        "lakeml (logging off)": lambda p: [str(BIN / "lakeml"), "models", "serve", "models:/bench@champion", "-w", wh,
                                           "--port", str(p), "--no-log-predictions"],
        "lakeml (logging on)": lambda p: [str(BIN / "lakeml"), "models", "serve", "models:/bench@champion", "-w", wh,
                                          "--port", str(p)],
    }
    order = ["mlflow"] + [k for _ in range(a.rounds) for k in ("lakeml (logging off)", "lakeml (logging on)")]
    runs: dict[str, dict[str, list[dict]]] = {k: {s: [] for s in bodies} for k in servers}
    for name in order:
        port = free_port()
        proc = start(servers[name](port), port, tmp / f"{name.split()[0]}-{port}.log")
        try:
            time.sleep(4.0)  # past the startup work (commit process, GC freeze): steady state is measured
            for size, body in bodies.items():
                n = a.requests if size == "1 row" else max(100, a.requests // 5)
                r = measure(port, body.encode(), n, a.concurrency, proc.pid, a.seconds)
                runs[name][size].append(r)
                print(f"{name:22} {size:9} rps {r['rps']:8.1f}  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
                      f"  server CPU {r['cpu_ms']:6.3f} ms/request  errors {r['errors']}", flush=True)
        finally:
            stop(proc)
    results = {name: {size: median_of(rs) for size, rs in by.items()} for name, by in runs.items()}
    wh_lake = __import__("lakeml").connect(warehouse=wh)
    logged = wh_lake.sql("SELECT count(*) FROM lakeml.predictions").rows()[0][0]
    wh_lake.close()
    print(f"predictions rows logged (logging on): {logged}")
    print(f"\nmedians over {a.rounds} alternated rounds of lakeml off/on ({a.seconds:.0f} s of load each):")
    print("| request | mlflow rps | lakeml off rps | lakeml on rps | on/mlflow | on/off | lakeml on p50 / p99 ms | "
          "mlflow p50 / p99 ms | server CPU ms/request mlflow / off / on |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in bodies:
        m, off, on = (results[k][size] for k in servers)
        print(f"| {size} | {m['rps']:.0f} | {off['rps']:.0f} | {on['rps']:.0f} | {on['rps'] / m['rps']:.2f} | "
              f"{on['rps'] / off['rps']:.2f} | {on['p50_ms']:.2f} / {on['p99_ms']:.2f} | "
              f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f} | {m['cpu_ms']:.2f} / {off['cpu_ms']:.2f} / {on['cpu_ms']:.2f} |")
    on1 = results["lakeml (logging on)"]["1 row"]
    print(f"\ntargets: lakeml (logging on) >= mlflow throughput: "
          f"{all(results['lakeml (logging on)'][s]['rps'] >= results['mlflow'][s]['rps'] for s in bodies)}; "
          f"1-row p99 <= 10 ms: {on1['p99_ms'] <= 10} ({on1['p99_ms']:.2f} ms); "
          f"logging costs <= 10% of rps: "
          f"{all(results['lakeml (logging on)'][s]['rps'] >= 0.9 * results['lakeml (logging off)'][s]['rps'] for s in bodies)}"
          f" (server CPU per request, on vs off: "
          + ", ".join(f"{s} +{results['lakeml (logging on)'][s]['cpu_ms'] / results['lakeml (logging off)'][s]['cpu_ms'] - 1:.0%}"
                      for s in bodies) + ")")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
