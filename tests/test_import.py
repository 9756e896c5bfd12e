"""``import lakeml`` stays light, and so does the logging path: pyiceberg, duckdb, polars and pyarrow
load only when something needs them (checked in fresh interpreters; no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("pyiceberg", "duckdb", "polars", "pyarrow", "pandas", "numpy", "sqlalchemy", "boto3", "yaml", "typer")


def _loaded(code: str, cwd=None) -> dict:
    probe = code + f"""
import json, sys
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))
"""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=cwd, env={**os.environ})
    assert out.returncode == 0, out.stderr[-3000:]
    return {"modules": json.loads(out.stdout.strip().splitlines()[-1]), "importtime": out.stderr}


def test_import_lakeml_loads_no_heavy_library():
    got = _loaded("import lakeml")
    assert got["modules"] == [], f"import lakeml pulled in {got['modules']}"
    # -X importtime lists every module imported; none of them is heavy
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in got["importtime"].splitlines()
                if line.startswith("import time:")}
    assert not imported & set(HEAVY), imported & set(HEAVY)
    assert "lakeml" in imported


def test_public_names_resolve_without_heavy_imports():
    got = _loaded("import lakeml\n"
                  "names = [lakeml.start_run, lakeml.log_metric, lakeml.log_params, lakeml.end_run, lakeml.flush,\n"
                  "         lakeml.connect, lakeml.Metric, lakeml.RunStatus, lakeml.LakemlError]")
    assert got["modules"] == []


def test_logging_loop_does_not_load_the_query_stack(tmp_path):
    """Starting a run and logging into it needs pyiceberg to commit, never DuckDB or polars."""
    got = _loaded(f"""
import lakeml
lakeml.set_lake(lakeml.connect(warehouse={str(tmp_path / 'wh')!r}))
with lakeml.start_run(experiment="light"):
    lakeml.log_params({{"lr": 0.1}})
    for step in range(1000):
        lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
    lakeml.flush()
""")
    assert "pyiceberg" in got["modules"]  # it did commit
    assert "duckdb" not in got["modules"] and "polars" not in got["modules"], got["modules"]
