"""Project board benchmark (issue 13, slice I): what the self-healing of the ``projects``/``tasks``
projections costs on each board read, and how long a repair takes.

    .venv/bin/python benchmarks/bench_board.py                     # 30 projects, 10 board reads
    .venv/bin/python benchmarks/bench_board.py --projects 100 --reads 20

Creates ``--projects`` model projects (half of them one step further), then times (medians of ``--reads``):
(1) the raw view ``SELECT * FROM lakeml.project_board``; (2) ``lake.projects.board()`` (flush, the gap
query of ``sync()``, the view); (3) ``sync()`` alone when nothing is missing; and (4) one repair after
the projection rows of ``--lost`` transitions were dropped (as a process killed after its ledger
commits). Prints seconds and the overhead ratio board()/raw view. No network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROLES = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam"}


def _median(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    import lakeml
    from lakeml.identity import acting_as

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=30)
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--lost", type=int, default=5, help="transitions whose projection rows are dropped")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = lakeml.connect(warehouse=Path(tmp) / "wh", commit_interval=3600)
        t = time.perf_counter()
        with acting_as("carol"):
            for i in range(a.projects):
                lake.projects.create(f"p{i:04d}", customer=f"c{i % 3}", roles=ROLES)
                if i % 2:
                    lake.projects.complete(f"p{i:04d}", "problem_statement",
                                           deliverables={"doc:problem_statement": "x"})
        lake.flush()
        seed = time.perf_counter() - t
        lake.projects.board()  # warm the engine
        raw = _median(lambda: lake.sql("SELECT * FROM lakeml.project_board"), a.reads)
        board = _median(lambda: lake.projects.board(), a.reads)
        sync = _median(lambda: lake.projects.sync(), a.reads)
        lost = 0
        with acting_as("carol"):
            for i in range(0, min(a.lost * 2, a.projects), 2):
                lake.projects.complete(f"p{i:04d}", "problem_statement", deliverables={"doc:problem_statement": "x"})
                lost += len(lake.committer.buffer("projects").take()) + len(lake.committer.buffer("tasks").take())
        t = time.perf_counter()
        res = lake.projects.sync()
        repair = time.perf_counter() - t
        lake.close()
    print(f"projects: {a.projects} (seeded in {seed:.1f} s), board reads: {a.reads}")
    print(f"raw view SELECT * FROM lakeml.project_board   {raw * 1000:8.1f} ms")
    print(f"lake.projects.board() (gap query + view)      {board * 1000:8.1f} ms   ratio {board / raw:.2f}x")
    print(f"lake.projects.sync(), nothing missing         {sync * 1000:8.1f} ms")
    print(f"repair of {lost:3d} lost projection rows         {repair * 1000:8.1f} ms   rebuilt {res.rows} rows")


if __name__ == "__main__":
    main()
