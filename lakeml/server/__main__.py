"""``python -m lakeml.server --warehouse DIR --port N``: the same as ``lakeml server`` (used by tests)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from lakeml.cli.main import app

    app(["server", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
