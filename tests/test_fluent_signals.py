"""A run ends KILLED on SIGTERM and Ctrl-C (SIGINT), FAILED on an uncaught exception: real processes,
real signals, and the status read back from the table. Nothing the worker logged is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lakeml import RunStatus
from tests.workers.lakes import lake_spec

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    # mode: (signal the test sends after "ready", expected status, expected error)
    "sigterm-self": (None, RunStatus.KILLED, "RunTerminated"),
    "sigint-self": (None, RunStatus.KILLED, "KeyboardInterrupt"),
    "sigterm-wait": (signal.SIGTERM, RunStatus.KILLED, "RunTerminated"),
    "sigint-wait": (signal.SIGINT, RunStatus.KILLED, "KeyboardInterrupt"),
    "sigterm-nowith": (signal.SIGTERM, RunStatus.KILLED, "RunTerminated"),
    "raise-nowith": (None, RunStatus.FAILED, "RuntimeError: worker gave up"),
}


def _start(lake, mode: str, stderr) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.workers.signal_worker", json.dumps(lake_spec(lake)), mode],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("mode", list(CASES))
def test_run_status_after_signal_or_crash(lake, mode, tmp_path):
    sig, status, error = CASES[mode]
    with open(tmp_path / "stderr.txt", "w+") as errf:
        proc = _start(lake, mode, errf)
        try:
            line = proc.stdout.readline()
            assert line.startswith("ready "), f"worker did not start: {line!r}"
            run_id = line.split()[1]
            if sig is not None:
                proc.send_signal(sig)
            out = proc.stdout.read()  # until the worker exits (same buffer as readline: nothing skipped)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
        errf.seek(0)
        err = errf.read()
    assert proc.returncode != 0, "a killed or crashed run must not exit 0"
    assert "logged " in out, (out, err)
    logged = int(out.split("logged ")[1].split()[0])
    assert "Traceback" not in err or mode in ("raise-nowith", "sigint-wait", "sigint-self"), err

    run = lake.get_run(run_id)
    assert run.status is status, (run.status, err)
    assert run.error == error
    assert run.end_time is not None and run.params == {"mode": mode}
    hist = lake.get_metric_history(run_id, "loss")
    assert hist.height == logged >= 100, "every acknowledged point is committed before the process dies"
    assert hist["step"].to_list() == list(range(logged))
