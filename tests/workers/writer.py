"""One of several concurrent writer processes: one run, ``n`` points of metric ``loss`` into one lake.

Usage: python -m tests.workers.writer '<lake spec json>' <index> <n>

Point i has step i and value index * 1e7 + i (exact in a double), so a reader can check that
every point arrived exactly once. Prints ``run <run_id>`` and, once committed, ``done``.
"""

from __future__ import annotations

import sys

from tests.workers.lakes import open_spec


def main(spec: str, index: int, n: int) -> None:
    lake = open_spec(spec, commit_interval=0.5, commit_deadline=300)
    run = lake.create_run("concurrency", run_name=f"writer-{index}", tags={"writer": str(index)})
    print(f"run {run.run_id}", flush=True)
    base = index * 10_000_000.0
    log = lake.log_metric
    rid = run.run_id
    for i in range(n):
        log(rid, "loss", base + i, i)
    lake.set_terminated(rid)  # flushes: returns once every point is committed
    lake.close()
    print(f"done {lake.committer.stats.commits} commits {lake.committer.stats.retries} retries", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
