"""Lifecycle costs (issue 13): creating projects, completing tasks, reading the board, as the ledger grows.

    .venv/bin/python benchmarks/bench_lifecycle.py               # 20 projects, ~1 min
    .venv/bin/python benchmarks/bench_lifecycle.py --projects 5  # a quick check

Each project walks the first three steps of the default process (problem statement, data mart with
three deliverables, back to experiments); every completion is a SpiffWorkflow step plus one
compare-and-swap commit to ``project_events`` (the serialized workflow included). Printed: median
milliseconds per create and per completion, early (first quarter) and late (last quarter) projects,
their ratio (a ledger fold that re-read everything would grow with the history), the bytes of
workflow state per event, and the time of one ``SELECT * FROM lakeml.project_board``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lakeml
from lakeml.identity import acting_as

ROLES = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam", "validator": "vera",
         "mlops_engineer": "max"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--projects", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = lakeml.connect(warehouse=tmp)
        creates, completes = [], []
        for i in range(args.projects):
            name = f"p{i}"
            t = time.perf_counter()
            with acting_as("carol"):
                lake.projects.create(name, roles=ROLES)
            creates.append(time.perf_counter() - t)
            t = time.perf_counter()
            with acting_as("carol"):
                lake.projects.complete(name, "problem_statement", deliverables={"doc:problem_statement": "text"})
            with acting_as("dan"):
                lake.projects.complete(name, "data_mart", deliverables={
                    "link:mart_code": "git://x", "link:mart": "s3://m", "doc:mart": "doc"})
            completes.append((time.perf_counter() - t) / 2)
        q = max(1, args.projects // 4)
        ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
        print(f"projects: {args.projects}, events: {lake.projects.ledger.state().seq}")
        print(f"create: {ms(creates):.0f} ms median")
        early, late = ms(completes[:q]), ms(completes[-q:])
        print(f"complete: early {early:.0f} ms, late {late:.0f} ms median, late/early {late / early:.2f}")
        lake.flush()
        size = lake.sql("SELECT avg(length(workflow_state)) AS b FROM lakeml.project_events "
                        "WHERE workflow_state IS NOT NULL").rows()[0][0]
        print(f"workflow state: {size:.0f} bytes per state-changing event")
        t = time.perf_counter()
        n = len(lake.sql("SELECT * FROM lakeml.project_board"))
        print(f"board: {n} rows in {1000 * (time.perf_counter() - t):.0f} ms")
        lake.close()


if __name__ == "__main__":
    main()
