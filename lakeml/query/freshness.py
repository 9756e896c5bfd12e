"""Read-your-writes: before any read, commit what this process still has pending."""

from __future__ import annotations

from typing import Any


class ReadYourWrites:
    """Called by every component before it reads, so a read sees this process's earlier writes.

    Cheap when nothing is pending (one counter read); otherwise it flushes the committer.
    """

    def __init__(self, committer: Any):
        self._committer = committer

    def __call__(self) -> None:
        if self._committer.pending_rows():
            self._committer.flush()
