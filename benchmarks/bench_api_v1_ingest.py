"""Latency of durable logging requests at ``POST /api/v1/batch`` with many concurrent clients.

Each client posts an Arrow batch of points for its own run with an idempotency key, waits for the
acknowledgement (rows in the server's fsynced spool), and repeats at a fixed rate. Prints p50/p99/max
request latency, points/s, and how many requests one spool fsync covered (group sync).

    python benchmarks/bench_api_v1_ingest.py [--clients 64] [--seconds 10] [--rate 10] [--points 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second per client")
    ap.add_argument("--points", type=int, default=10, help="metric points per request")
    a = ap.parse_args()

    import httpx
    import pyarrow as pa

    from tests.servers import LakemlServer

    base = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    srv = LakemlServer(base / "wh", base_dir=base)
    lat: list[float] = []
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as h:
            runs = [h.post("/api/v1/runs", json={"experiment": "bench"}).json()["run_id"] for _ in range(a.clients)]

        def client(rid: str) -> None:
            step = 0
            with httpx.Client(base_url=srv.url, timeout=60) as h:
                end = time.monotonic() + a.seconds
                while time.monotonic() < end:
                    t = pa.table({"run_id": [rid] * a.points, "key": ["loss"] * a.points,
                                  "value": [float(i) for i in range(a.points)],
                                  "step": list(range(step, step + a.points))})
                    step += a.points
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_stream(sink, t.schema) as w:
                        w.write_table(t)
                    t0 = time.perf_counter()
                    r = h.post("/api/v1/batch", content=sink.getvalue().to_pybytes(),
                               headers={"Content-Type": "application/vnd.apache.arrow.stream",
                                        "X-Lakeml-Batch-Id": uuid.uuid4().hex})
                    dt = time.perf_counter() - t0
                    r.raise_for_status()
                    with lock:
                        lat.append(dt)
                    time.sleep(max(0.0, 1.0 / a.rate - dt))

        threads = [threading.Thread(target=client, args=(r,)) for r in runs]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    finally:
        srv.stop()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    print(f"clients={a.clients} requests={len(lat)} points/s={len(lat) * a.points / wall:,.0f}")
    print(f"latency ms: p50={q(0.5):.2f} p90={q(0.9):.2f} p99={q(0.99):.2f} max={lat[-1] * 1000:.2f} "
          f"mean={statistics.mean(lat) * 1000:.2f}")


if __name__ == "__main__":
    main()
