"""Concurrent writer processes into one lake: every point lands exactly once, as a plain
pyiceberg reader (no lakeml code, in its own process) sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakeml
from lakeml import RunStatus
from tests.conftest import s3_lake_kwargs
from tests.workers.lakes import lake_spec, plain_props

ROOT = Path(__file__).resolve().parent.parent


def _run_writers(spec: dict, procs: int, points: int) -> dict[str, int]:
    """Start ``procs`` writers at once; returns run_id -> writer index once all are done."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.workers.writer", json.dumps(spec), str(i), str(points)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for i in range(procs)]
    runs = {}
    try:
        for i, w in enumerate(workers):
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0 and "done" in out, f"writer {i} failed:\n{err[-3000:]}"
            runs[out.split("run ")[1].split()[0]] = i
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    return runs


def _plain_read(spec: dict) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "workers" / "plain_reader.py"),
                          json.dumps(plain_props(spec))], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _check(found: dict, runs: dict[str, int], points: int) -> None:
    assert set(found) == set(runs), "one run per writer, no strays"
    for run_id, i in runs.items():
        got = found[run_id]
        base = i * 10_000_000
        assert got["count"] == points, f"writer {i}: {got['count']} points, expected {points}"
        assert got["distinct_steps"] == points, f"writer {i}: duplicated or missing steps"
        assert got["sum_steps"] == points * (points - 1) // 2
        assert got["sum_values"] == pytest.approx(base * points + points * (points - 1) / 2, rel=1e-12)
        assert got["min_value"] == base


def test_eight_writer_processes_into_one_file_lake(tmp_path):
    procs, points = 8, 100_000
    spec = {"warehouse": str(tmp_path / "wh"), "catalog_name": "lakeml"}
    with lakeml.connect(warehouse=spec["warehouse"]) as lake:
        lake.init()  # tables exist before the race (creation races are covered below)
    runs = _run_writers(spec, procs, points)
    _check(_plain_read(spec), runs, points)
    with lakeml.connect(warehouse=spec["warehouse"]) as lake:
        df = lake.search_runs("concurrency")
        assert df.height == procs and set(df["status"].to_list()) == {RunStatus.FINISHED.value}


def test_writers_racing_to_create_the_tables(tmp_path):
    """No lake yet: four processes create the namespace and tables at the same moment."""
    procs, points = 4, 5_000
    spec = {"warehouse": str(tmp_path / "wh"), "catalog_name": "lakeml"}
    runs = _run_writers(spec, procs, points)
    _check(_plain_read(spec), runs, points)


def test_four_writer_processes_into_one_s3_lake(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    with lakeml.connect(**s3_lake_kwargs(server, bucket, tmp_path)) as lake:
        lake.init()
        spec = lake_spec(lake)
    procs, points = 4, 20_000
    runs = _run_writers(spec, procs, points)
    _check(_plain_read(spec), runs, points)
