"""Keep Python's full garbage collections short in a long-running server.

A full (generation 2) collection walks every tracked object while holding the GIL: with pyiceberg,
pyarrow, FastAPI and the warm caches loaded that is 100-200 ms, and every request in flight waits
(measured with ``gc.callbacks`` under benchmarks/bench_server.py's load: they made its p99). What
lives as long as the process (modules, classes, caches) is moved out of the collector's reach with
:func:`gc.freeze` a few seconds after the server starts, and again once the first requests have imported the rest;
a full collection then walks only what was allocated since, in a few milliseconds.
"""

from __future__ import annotations

import gc
import threading

#: Seconds after startup at which what is alive is frozen (again: the first requests import more).
FREEZE_AFTER = (3.0, 10.0, 60.0)


def freeze_now(collect: bool = True) -> int:
    """Collect (optionally), then freeze every object alive; returns how many are frozen."""
    if collect:
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_later(delays: tuple[float, ...] = FREEZE_AFTER) -> threading.Thread:
    """Freeze after each delay, from a daemon thread (not at startup: that would delay the first answer).
    No full collection first (it would stall requests for 100-200 ms): the few garbage cycles frozen
    with the rest stay until exit."""
    stop = threading.Event()

    def later() -> None:
        for d in delays:
            if stop.wait(d):
                return
            freeze_now(collect=False)

    t = threading.Thread(target=later, name="lakeml-gc-freeze", daemon=True)
    t.start()
    return t
