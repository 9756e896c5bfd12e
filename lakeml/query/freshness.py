"""Read-your-writes: before any read, commit what this process still has pending for the lake."""

from __future__ import annotations

from typing import Any


def lake_identity(config: Any) -> tuple:
    """What makes two clients of this process write the same lake: catalog, its location, namespace."""
    props = config.properties
    return (config.catalog_name, props.get("uri"), props.get("warehouse"), config.namespace)


class ReadYourWrites:
    """Called by every component before it reads, so a read sees this process's earlier writes: those
    of its own committer and of any other open client of the same lake in this process (e.g. the
    fluent API's, read back with a second ``lakeml.connect()``).

    Cheap when nothing is pending (a row count per open committer); otherwise it flushes.
    """

    def __init__(self, committer: Any):
        self._committer = committer
        self._lake = lake_identity(committer.store.config)

    def __call__(self) -> None:
        from lakeml.storage.committer import live_committers

        if self._committer.pending_rows():
            self._committer.flush()
        for c in live_committers():
            if c is not self._committer and c.pending_rows() and lake_identity(c.store.config) == self._lake:
                c.flush()
