"""Load DuckDB's iceberg, httpfs and avro extensions from site-packages, never from the network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lakeml.errors import MissingDependencyError

EXTENSIONS = ("httpfs", "avro", "iceberg")


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file that the PyPI package ``duckdb-extension-<name>`` installed."""
    import duckdb

    pkg = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(pkg)
    hint = f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'"
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"DuckDB extension '{name}' is not installed; lakeml never downloads "
                                     f"extensions at run time. Install it with: {hint}")
    root = Path(list(spec.submodule_search_locations)[0])
    exact = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(root.glob(f"extensions/*/{name}.duckdb_extension"))
    raise MissingDependencyError(
        f"DuckDB extension '{name}' does not match duckdb {duckdb.__version__} "
        f"(found {[p.parent.name for p in found] or 'none'}); install the matching build: {hint}")


def load_extensions(con, names: tuple[str, ...] = EXTENSIONS) -> None:
    """LOAD the extensions ``names`` (default: every one lakeml needs) into ``con`` from their local files."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def new_connection(database: str = ":memory:", *, httpfs: bool = True, **config):
    """A DuckDB connection that will never auto-install or auto-load from the internet.

    ``httpfs=False`` skips the object-store extension (a lake on local disk only: faster to open).
    """
    import duckdb

    cfg = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    cfg.update(config)
    con = duckdb.connect(database, config=cfg)
    try:
        load_extensions(con, EXTENSIONS if httpfs else tuple(n for n in EXTENSIONS if n != "httpfs"))
    except BaseException:
        con.close()
        raise
    return con
