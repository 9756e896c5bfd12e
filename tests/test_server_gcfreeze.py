"""lakeml.server.gcfreeze: what is alive at startup leaves the collector's reach, and is frozen again later."""

from __future__ import annotations

import gc

from lakeml.server import gcfreeze


def test_freeze_later_then_again_after_the_delays():
    gc.unfreeze()
    try:
        assert gcfreeze.freeze_now() > 1000  # the modules and classes loaded so far
        first = gc.get_freeze_count()
        t = gcfreeze.freeze_later(delays=(1.0,))
        keep = [[i] for i in range(5000)]  # long-lived objects made after the first freeze
        t.join(5)
        assert not t.is_alive()
        assert gc.get_freeze_count() >= first + len(keep)  # frozen by the second pass
        assert gc.collect() >= 0  # a full collection still works (frozen objects are skipped)
    finally:
        gc.unfreeze()
