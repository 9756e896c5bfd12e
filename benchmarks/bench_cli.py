"""Cold CLI latency (issue 9, section 2): each command in a fresh process, on the demo's warehouse.

    .venv/bin/python benchmarks/bench_cli.py              # ~1 min
    .venv/bin/python benchmarks/bench_cli.py --reps 5 --json /tmp/cli.json
    git archive <old commit> | tar -x -C /tmp/old && .venv/bin/python benchmarks/bench_cli.py --before /tmp/old

Builds the warehouse of ``lakeml demo`` (6 runs, a registered model) in a temporary folder, then
times every command as users run it: the venv's ``lakeml`` program, a new process each time
(nothing shared but the OS file cache), wall clock from spawn to exit. One untimed run first
(Python bytecode caches), then the median of ``--reps``. Printed next to the target and to the
figure the issue measured before the work (quiet machine), with the CPU time (user + system) the
process used: on a busy machine wall time mostly measures the wait for a core, CPU time much less.
``--before DIR`` also times a checkout of older lakeml sources (``PYTHONPATH=DIR``, same venv)
interleaved with the current one, on the same warehouse: a fair before/after on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAKEML = Path(sys.executable).parent / "lakeml"

# (label, argv after 'lakeml', target seconds, issue 9's "before" seconds or None)
COMMANDS = [
    ("lakeml --help", ["--help"], 0.3, None),
    ("lakeml experiments list", ["experiments", "list"], 0.8, 2.8),
    ("lakeml runs list -e demo", ["runs", "list", "-e", "demo"], 0.8, 3.3),
    ("lakeml runs show RUN_ID", ["runs", "show", "{run}"], 0.8, None),
    ("lakeml models show NAME@champion", ["models", "show", "{model}@champion"], 0.8, 1.8),
    ("lakeml sql 'SELECT 1'", ["sql", "SELECT 1"], 1.0, 3.5),
]


def run(argv: list[str], cwd: Path, env: dict[str, str], before: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``lakeml`` process; ``before``: sources to run instead."""
    if before is not None:
        cmd, env = [sys.executable, "-m", "lakeml", *argv], {**env, "PYTHONPATH": before}
    else:
        cmd = [str(LAKEML), *argv]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"lakeml {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return took, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def python_floor(reps: int) -> float:
    """A bare interpreter start plus ``import lakeml``: what no command can go below."""
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import lakeml"], check=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="timed runs per command (median)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--before", metavar="DIR", help="a checkout of older lakeml sources to time alongside")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be >= 1")

    with tempfile.TemporaryDirectory(prefix="lakeml-bench-cli-") as tmp:
        cwd = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEML_", "PYICEBERG_"))}
        env["LAKEML_CACHE_DIR"] = str(cwd / "cache")
        print("building the demo warehouse (lakeml demo)...", flush=True)
        demo = subprocess.run([str(LAKEML), "demo", "-o", "json"], cwd=cwd, env=env, capture_output=True, text=True)
        if demo.returncode != 0:
            raise SystemExit(f"lakeml demo failed: {demo.stderr.strip()}")
        result = json.loads(demo.stdout)
        names = {"run": result["leaderboard"][0]["run_id"],
                 "model": (result.get("champion") or {}).get("model", "demo-breast-cancer")}
        floor = python_floor(args.reps)
        head = f"\n{'command':34} {'median':>8} {'cpu':>6} {'target':>7} {'before':>7}  verdict"
        print(head + ("   | --before: median, cpu" if args.before else "") + f"   (median of {args.reps}, cold)")
        rows = []
        for label, argv, target, before in COMMANDS:
            argv = [a.format(**names) for a in argv]
            run(argv, cwd, env)  # untimed: bytecode caches
            if args.before:
                run(argv, cwd, env, args.before)
            now, old = [], []
            for _ in range(args.reps):
                now.append(run(argv, cwd, env))
                if args.before:
                    old.append(run(argv, cwd, env, args.before))
            med, cpu = statistics.median(t for t, _ in now), statistics.median(c for _, c in now)
            verdict = "ok" if med <= target else f"{med / target:.1f}x over"
            was = f"{before:.1f}s" if before is not None else "-"
            line = f"{label:34} {med:7.2f}s {cpu:5.2f}s {target:6.1f}s {was:>7}  {verdict:9}"
            row = {"command": label, "median_s": round(med, 3), "cpu_s": round(cpu, 3),
                   "runs_s": [round(t, 3) for t, _ in now], "target_s": target, "issue_before_s": before}
            if old:
                omed, ocpu = statistics.median(t for t, _ in old), statistics.median(c for _, c in old)
                line += f" | {omed:6.2f}s {ocpu:5.2f}s  ({ocpu / cpu:.1f}x the CPU)"
                row.update(before_median_s=round(omed, 3), before_cpu_s=round(ocpu, 3))
            print(line, flush=True)
            rows.append(row)
        print(f"\nfloor: python -c 'import lakeml' = {floor:.2f}s (median of {args.reps})")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if load is not None:
            print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"commands": rows, "import_lakeml_s": round(floor, 3)}, indent=2))


if __name__ == "__main__":
    main()
