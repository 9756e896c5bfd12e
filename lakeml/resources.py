"""Where the shipped `catalog/` contract and `sql/` files live.

In a source checkout (or an editable install) they sit at the repository root;
in a wheel they are shipped as ``lakeml/_data/{catalog,sql}``.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``catalog`` or ``sql``, whichever install layout is in use."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"lakeml's '{name}/' folder is missing from {_PKG}; reinstall lakeml")
