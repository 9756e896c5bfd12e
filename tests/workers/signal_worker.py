"""Start a run, log into it, print ``ready <run_id>``, then get stopped the way ``mode`` says.

Usage: python -m tests.workers.signal_worker '<lake spec json>' <mode>

modes: sigterm-self, sigint-self (the worker signals itself), sigterm-wait, sigint-wait (the
test signals it), sigterm-nowith (a run started without ``with``), raise-nowith (an uncaught
exception). Before dying it prints ``logged <n>``: the points it logged, all of which must
end up in the table.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import lakeml
from tests.workers.lakes import open_spec


def main(spec: str, mode: str) -> None:
    lakeml.set_lake(open_spec(spec, commit_interval=0.2, commit_deadline=30))
    logged = 0

    def body(run) -> None:
        nonlocal logged
        lakeml.log_param("mode", mode)
        for step in range(100):
            lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
            logged += 1
        print(f"ready {run.id}", flush=True)
        if mode == "sigterm-self":
            os.kill(os.getpid(), signal.SIGTERM)
        elif mode == "sigint-self":
            os.kill(os.getpid(), signal.SIGINT)
        elif mode == "raise-nowith":
            raise RuntimeError("worker gave up")
        step = 100
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # log until the test signals us
            lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
            logged += 1
            step += 1
            time.sleep(0.001)
        print("never signalled", flush=True)

    try:
        if mode.endswith("-nowith"):
            body(lakeml.start_run(experiment="signals"))
        else:
            with lakeml.start_run(experiment="signals") as run:
                body(run)
    finally:
        print(f"logged {logged}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
