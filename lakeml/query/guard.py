"""What a read-only SQL session may run, and DuckDB errors turned into lakeml errors.

Two layers keep ``lake.sql`` read-only: this statement check, and DuckDB's own
lock-down of the connection (``lockdown.py``: no file or network access outside the
lake's storage, configuration locked). The check lets through only queries (SELECT,
FROM-first, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, and EXPLAIN of those), and
inside them only the table functions of :data:`READ_FUNCTIONS`: DuckDB parses the
query (``json_serialize_sql``) and every table function of the tree is looked up in
that allow-list, so a function that changes the session (``enable_logging``,
``enable_profiling``, ``checkpoint``, ``query``...) is refused, including ones added
by a future DuckDB.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable, Iterator

from lakeml.errors import QueryError, ReadOnlyError
from lakeml.validation import utf8_text

# Table functions that open files: confined to the lake's storage by the connection's
# allowed_directories (lockdown.py); their paths must be literals without '.'/'..' parts.
FILE_FUNCTIONS = frozenset({
    "iceberg_scan", "iceberg_metadata", "iceberg_snapshots", "iceberg_column_stats", "iceberg_partition_stats",
    "iceberg_table_properties", "iceberg_schema_properties",
    "read_parquet", "parquet_scan", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "parquet_full_metadata", "parquet_bloom_probe",
    "read_csv", "read_csv_auto", "sniff_csv", "read_json", "read_json_auto", "read_ndjson", "read_ndjson_auto",
    "read_json_objects", "read_json_objects_auto", "read_ndjson_objects", "read_text", "read_blob",
    "read_avro", "glob",
})
# Table functions a read-only user may call: the file readers and those that only read the catalog.
READ_FUNCTIONS = FILE_FUNCTIONS | frozenset({
    # generators and nested values
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree", "histogram",
    "histogram_values",
    # the catalog and the engine, read-only
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies", "duckdb_functions",
    "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_tables", "duckdb_types", "duckdb_views",
    "duckdb_sequences", "duckdb_settings", "duckdb_extensions", "duckdb_optimizers", "duckdb_memory",
    "pragma_table_info", "pragma_show", "pragma_version", "pragma_platform", "pragma_collations",
    "pragma_database_size", "pragma_storage_info", "pragma_metadata_info", "pragma_user_agent",
    "pg_timezone_names", "icu_calendar_names",
})
_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\(([^()'\"]*)\)\s*)?", re.I)
_WHAT = {"COPY": "COPY writes files", "ATTACH": "ATTACH opens another database",
         "DETACH": "DETACH changes the session", "LOAD": "INSTALL/LOAD changes the extensions",
         "SET": "SET/USE changes the session", "CREATE": "CREATE adds objects",
         "INSERT": "INSERT writes rows", "UPDATE": "UPDATE writes rows", "DELETE": "DELETE writes rows",
         "DROP": "DROP removes objects", "ALTER": "ALTER changes objects", "EXPORT": "EXPORT writes files",
         "CALL": "CALL runs procedures", "PRAGMA": "this PRAGMA changes the session (the PRAGMAs that read, "
                                                   "e.g. PRAGMA table_info('lakeml.runs'), run as queries)"}
_parser: Any = None
_parser_lock = threading.Lock()


def statements(sql: str) -> list[Any]:
    """Parse ``sql`` into DuckDB statements; a syntax error becomes a :class:`QueryError`."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty SQL query; pass e.g. \"SELECT * FROM lakeml.runs_latest LIMIT 10\"")
    utf8_text(sql, "SQL query")
    if "\x00" in sql:
        raise QueryError("the SQL query contains a NUL byte; remove it")
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise translate(e, sql) from e


def check_read_only(stmts: Iterable[Any], con: Any = None) -> None:
    """Raise :class:`ReadOnlyError` unless every statement only reads.

    ``con``: a DuckDB connection to parse with (default: a private in-memory one, made once).
    """
    import duckdb

    for st in stmts:
        kind = st.type.name
        if kind == "SELECT":
            _check_functions(st.query, con)
            continue
        if kind == "EXPLAIN":
            m = _EXPLAIN.match(st.query)
            inner = st.query[m.end():] if m else ""
            if inner.strip():
                try:
                    parts = duckdb.extract_statements(inner)
                except duckdb.Error as e:
                    raise QueryError(f"cannot read the query after EXPLAIN in {_short(st.query)!r}: {e}") from e
                if len(parts) == 1:
                    check_read_only(parts, con)
                    continue
        why = _WHAT.get(kind, f"{kind} is not a query")
        _refuse(st.query, why)


def _refuse(sql: str, why: str) -> None:
    first = " ".join(sql.split())[:60]
    raise ReadOnlyError(
        f"refused {first!r}: {why}, and lake.sql is read-only (only SELECT-style queries run, and "
        "only the lake's own storage can be read). To write, open a read-write session: "
        "lake.sql(query, read_write=True) or 'lakeml sql --read-write'.")


def _check_functions(sql: str, con: Any = None) -> None:
    """Refuse a query that calls a table function outside :data:`READ_FUNCTIONS`."""
    tree = _parse_tree(sql, con)
    if tree.get("error"):
        raise ReadOnlyError(f"refused {_short(sql, 60)!r}: lake.sql could not check which functions it calls "
                            f"({tree.get('error_message')}); write it as a plain SELECT, or use read_write=True")
    for name, args in _table_functions(tree):
        if name.lower() not in READ_FUNCTIONS:
            _refuse(sql, f"the table function {name}() is not one that only reads (those are: "
                         "iceberg_scan, read_parquet, read_csv, read_json, range, unnest, duckdb_tables and the "
                         "other catalog functions; see lakeml.query.guard.READ_FUNCTIONS)")
        if name.lower() in FILE_FUNCTIONS:
            for arg in args:
                if arg.get("class") == "COMPARISON":  # a named option such as header = true
                    continue
                paths = arg.get("children", []) if arg.get("function_name") == "list_value" else [arg]
                for p in paths:
                    if p.get("class") != "CONSTANT":
                        _refuse(sql, f"{name}() reads a path computed by an expression; write the path as a "
                                     "string literal, e.g. read_parquet('s3://bucket/warehouse/...')")
                    _check_path(sql, str((p.get("value") or {}).get("value", "")))
    for name in _base_tables(tree):
        _check_path(sql, name)


def _check_path(sql: str, path: str) -> None:
    """Refuse '.' and '..' parts: DuckDB compares s3:// paths with the allowed prefixes as plain strings."""
    from urllib.parse import unquote

    if any(unquote(part) in (".", "..") for part in re.split(r"[/\\]", path)):
        _refuse(sql, f"the path {path!r} has a '.' or '..' part, which could leave the lake's storage; "
                     "write the path without them")


def _parse_tree(sql: str, con: Any = None) -> dict:
    """DuckDB's own parse tree of one SELECT statement, as JSON."""
    global _parser
    import duckdb

    query = "SELECT json_serialize_sql('" + sql.replace("'", "''") + "')"  # a literal: no prepare step
    try:
        if con is not None:
            return json.loads(con.execute(query).fetchone()[0])
        with _parser_lock:
            if _parser is None:
                _parser = duckdb.connect()
            return json.loads(_parser.execute(query).fetchone()[0])
    except duckdb.Error as e:
        return {"error": True, "error_message": str(e).splitlines()[0]}


def _table_functions(node: Any) -> Iterator[tuple[str, list[dict]]]:
    """``(name, arguments)`` of every table function called anywhere in a parse tree (subqueries, CTEs...)."""
    if isinstance(node, dict):
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            fn = node["function"]
            yield str(fn.get("function_name", "")), [c for c in fn.get("children") or [] if isinstance(c, dict)]
        for child in node.values():
            yield from _table_functions(child)
    elif isinstance(node, list):
        for child in node:
            yield from _table_functions(child)


def _base_tables(node: Any) -> Iterator[str]:
    """The names in FROM clauses (a quoted file path there is read by a replacement scan)."""
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            yield node["table_name"]
        for child in node.values():
            yield from _base_tables(child)
    elif isinstance(node, list):
        for child in node:
            yield from _base_tables(child)


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
