"""The views in ``sql/*.sql``: plain SQL files, loaded into every lakeml DuckDB connection.

Each file holds ``CREATE OR REPLACE VIEW lakeml.<name> AS ...`` statements over the
base views (``lakeml.runs``, ``lakeml.metrics``, ...) and over each other. Files
load in name order; a view whose dependencies are not defined yet is retried
after the others, and one that still cannot be created (e.g. its base table has
no contract in this version) is logged and skipped, never fatal.
``sql/examples/*.sql`` are example analytics queries, not loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeml.resources import data_dir

log = logging.getLogger("lakeml.query")


@dataclass(frozen=True)
class ViewDef:
    name: str  # the view's name, e.g. "lakeml.run_summary"
    sql: str
    source: str  # file it came from


def sql_dir() -> Path:
    return data_dir("sql")


def view_defs(folder: Path | None = None) -> list[ViewDef]:
    """Every CREATE statement of the top-level ``sql/*.sql`` files, in file order."""
    import duckdb

    out = []
    for path in sorted((folder or sql_dir()).glob("*.sql")):
        text = path.read_text()
        try:
            stmts = duckdb.extract_statements(text)
        except duckdb.Error as e:
            log.warning("lakeml: skipping %s: it does not parse (%s)", path.name, e)
            continue
        for st in stmts:
            if st.type.name != "CREATE":
                log.warning("lakeml: %s: ignoring a %s statement (only CREATE VIEW/MACRO belong here)",
                            path.name, st.type.name)
                continue
            out.append(ViewDef(_name(st.query), st.query.strip(), path.name))
    return out


def _name(query: str) -> str:
    words = query.replace("(", " ").split()
    upper = [w.upper() for w in words]
    for marker in ("VIEW", "MACRO", "TABLE"):
        if marker in upper:
            i = upper.index(marker) + 1
            if i < len(words) and upper[i] == "IF":
                i += 3
            return words[i].strip('"') if i < len(words) else "?"
    return "?"


def load_views(con: Any, defs: list[ViewDef] | None = None,
               internal: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Create the views on ``con``; returns (created names, {skipped name: reason}).

    ``internal`` maps a view name to another name to create its definition under; the
    view itself then selects from it (the engine later points it at a materialized copy).
    """
    import duckdb

    internal = internal or {}
    pending = list(defs if defs is not None else view_defs())
    done: list[str] = []
    errors: dict[str, str] = {}
    while pending:
        left = []
        for d in pending:
            try:
                if d.name in internal:
                    con.execute(d.sql.replace(d.name, internal[d.name], 1))
                    con.execute(f"CREATE OR REPLACE VIEW {d.name} AS SELECT * FROM {internal[d.name]}")
                else:
                    con.execute(d.sql)
                done.append(d.name)
                errors.pop(d.name, None)
            except duckdb.CatalogException as e:  # a dependency is not there (yet)
                left.append(d)
                errors[d.name] = str(e).splitlines()[0]
            except duckdb.Error as e:
                errors[d.name] = str(e).splitlines()[0]
                log.warning("lakeml: view %s from sql/%s fails: %s", d.name, d.source, errors[d.name])
        if len(left) == len(pending):
            for d in left:
                log.info("lakeml: view %s from sql/%s skipped: %s", d.name, d.source, errors[d.name])
            break
        pending = left
    return done, errors
