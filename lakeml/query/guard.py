"""What a read-only SQL session may run, and DuckDB errors turned into lakeml errors.

Two layers keep ``lake.sql`` read-only: this statement check (only queries pass:
SELECT, FROM-first, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, PRAGMA that read,
EXPLAIN of those), and DuckDB's own lock-down of the connection (no file or
network access outside the lake's storage, configuration locked).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from lakeml.errors import QueryError, ReadOnlyError

_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALY[SZ]E\s+)?", re.I)
_WHAT = {"COPY": "COPY writes files", "ATTACH": "ATTACH opens another database",
         "DETACH": "DETACH changes the session", "LOAD": "INSTALL/LOAD changes the extensions",
         "SET": "SET/USE changes the session", "CREATE": "CREATE adds objects",
         "INSERT": "INSERT writes rows", "UPDATE": "UPDATE writes rows", "DELETE": "DELETE writes rows",
         "DROP": "DROP removes objects", "ALTER": "ALTER changes objects", "EXPORT": "EXPORT writes files",
         "CALL": "CALL runs procedures", "PRAGMA": "this PRAGMA changes the session"}


def statements(sql: str) -> list[Any]:
    """Parse ``sql`` into DuckDB statements; a syntax error becomes a :class:`QueryError`."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty SQL query; pass e.g. \"SELECT * FROM lakeml.runs_latest LIMIT 10\"")
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise translate(e, sql) from e


def check_read_only(stmts: Iterable[Any]) -> None:
    """Raise :class:`ReadOnlyError` unless every statement only reads."""
    import duckdb

    for st in stmts:
        kind = st.type.name
        if kind == "SELECT":
            continue
        if kind == "EXPLAIN":
            inner = _EXPLAIN.sub("", st.query, count=1)
            if inner.strip() and inner != st.query:
                check_read_only(duckdb.extract_statements(inner))
                continue
        why = _WHAT.get(kind, f"{kind} is not a query")
        first = " ".join(st.query.split())[:60]
        raise ReadOnlyError(
            f"refused {first!r}: {why}, and lake.sql is read-only (only SELECT-style queries run, and "
            "only the lake's own storage can be read). To write, open a read-write session: "
            "lake.sql(query, read_write=True) or 'lakeml sql --read-write'.")


def translate(e: BaseException, sql: str, known_tables: Iterable[str] = ()) -> Exception:
    """A DuckDB error as the lakeml error that says what to do."""
    import duckdb

    msg = str(e).strip()
    if isinstance(e, duckdb.ParserException):
        return QueryError(f"SQL syntax error: {msg}. Query: {_short(sql)}")
    if isinstance(e, duckdb.PermissionException):
        return ReadOnlyError(f"refused by the read-only session: {msg}. lake.sql may read only the lake's own "
                             "tables and storage; use read_write=True to reach other files.")
    if isinstance(e, duckdb.CatalogException) and re.search(r"Table with name .* does not exist", msg):
        names = sorted(known_tables)
        listing = ", ".join(names) if names else "(none)"
        name = re.search(r"Table with name (\S+) does not exist", msg)
        return QueryError(f"unknown table {name.group(1) if name else ''}: the tables and views that exist are "
                          f"{listing}. (DuckDB: {msg.splitlines()[0]})")
    return QueryError(f"{type(e).__name__}: {msg}")


def _short(sql: str, n: int = 200) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= n else one[: n - 3] + "..."
