"""lakeml's logging: one level setting, and expected library chatter kept off the user's terminal.

Rule: what happens during normal operation (a commit that lost a race and was retried) is
DEBUG and counted (:func:`lakeml.storage.retry.retry_stats`, shown by ``lakeml doctor``); a
warning means something the user should act on (retries ran out, a commit was slow).

:func:`setup` runs at ``import lakeml`` without importing pyiceberg: it installs a filter on
the pyiceberg loggers *by name*, so the filter is in place whenever pyiceberg is imported.
``LAKEML_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR, or a number) sets the level of the
``lakeml`` logger and, when set, prints its records to stderr.
"""

from __future__ import annotations

import logging
import os
import re
import sys

ENV_LEVEL = "LAKEML_LOG_LEVEL"
ROOT = "lakeml"
# counters (lakeml.storage.retry.retry_stats) of the demoted messages: (key, event)
PYICEBERG_RETRIES = "pyiceberg commit (concurrent update)"  # pyiceberg's own commit retries, event "retries"
PYICEBERG_CLEANUP = "pyiceberg delete after commit"  # old metadata files it could not delete, event "files_left"
PYICEBERG_REGION = "pyiceberg s3 region lookup"  # buckets whose region it could not ask, event "unresolved"

# (logger, message pattern, (counter key, event)): library messages that are expected during normal
# operation. They are re-logged on "lakeml.<library>" at DEBUG instead, and counted.
EXPECTED: list[tuple[str, "re.Pattern[str]", tuple[str, str]]] = [
    # pyiceberg/table/__init__.py, Transaction.commit_transaction: a concurrent append won; it rebases
    ("pyiceberg.table", re.compile(r"^Commit failed due to a concurrent update, retrying"),
     (PYICEBERG_RETRIES, "retries")),
    # pyiceberg/catalog/__init__.py, delete_files after a commit (write.metadata.delete-after-commit):
    # a client whose table was behind deletes old metadata files another writer already deleted.
    # Harmless; a file really left behind is removed by orphan cleanup (lakeml maintain).
    ("pyiceberg.catalog", re.compile(r"^Failed to delete metadata file "), (PYICEBERG_CLEANUP, "files_left")),
    # pyiceberg/io/pyarrow.py: with s3.region unset it asks the bucket for its region; MinIO, SeaweedFS
    # and other S3-compatible stores often do not answer, and the configured endpoint is used anyway.
    ("pyiceberg.io.pyarrow", re.compile(r"^Unable to resolve region for bucket "), (PYICEBERG_REGION, "unresolved")),
]

_handler: logging.Handler | None = None


class Demote(logging.Filter):
    """Drops the expected records of one library logger, re-logging them at DEBUG on lakeml's logger."""

    def __init__(self, logger: str, rules: list[tuple["re.Pattern[str]", tuple[str, str]]]):
        super().__init__()
        self.rules = rules
        self.target = logging.getLogger(f"{ROOT}.{logger.split('.')[0]}")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        for pattern, counter in self.rules:
            if pattern.search(msg):
                from lakeml.storage.retry import count

                count(*counter)
                self.target.debug("%s (from %s)", msg, record.name)
                return False
        return True


def level_from_env(value: str | None = None) -> int | None:
    """The level ``LAKEML_LOG_LEVEL`` names, None when unset; InvalidInputError naming the choices."""
    raw = (os.environ.get(ENV_LEVEL) if value is None else value) or ""
    raw = raw.strip()
    if not raw:
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    if not isinstance(level, int):
        from lakeml.errors import InvalidInputError

        raise InvalidInputError(f"{ENV_LEVEL}={raw!r} is not a log level; use DEBUG, INFO, WARNING or ERROR "
                                "(or unset it for warnings only)")
    return level


def setup() -> None:
    """Install the filters and apply ``LAKEML_LOG_LEVEL``; safe to call again (after changing the variable)."""
    by_logger: dict[str, list[tuple[re.Pattern[str], tuple[str, str]]]] = {}
    for name, pattern, counter in EXPECTED:
        by_logger.setdefault(name, []).append((pattern, counter))
    for name, rules in by_logger.items():
        lg = logging.getLogger(name)
        for f in [f for f in lg.filters if isinstance(f, Demote)]:
            lg.removeFilter(f)
        lg.addFilter(Demote(name, rules))
    try:
        level = level_from_env()
    except ValueError as e:  # a bad setting must not break `import lakeml`: say so once, keep the default
        print(f"lakeml: {e}", file=sys.stderr)
        level = None
    apply_level(level)


def apply_level(level: int | None) -> None:
    """Set the ``lakeml`` logger's level and print its records to stderr; None undoes only what an
    earlier call did (a level the application set itself is left alone)."""
    global _handler
    root = logging.getLogger(ROOT)
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
        root.setLevel(logging.NOTSET)
        root.propagate = True
    if level is None:
        return
    root.setLevel(level)
    _handler = logging.StreamHandler()  # sys.stderr at emit time
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    root.propagate = False  # asked for on stderr: once, not again through the application's root handler
