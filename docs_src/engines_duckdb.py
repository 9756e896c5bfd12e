"""docs/engines.md: plain DuckDB over lakeml's tables, pointed at each table's current metadata file."""

import os
from pathlib import Path

import duckdb
from pyiceberg.catalog import load_catalog

warehouse = Path(os.environ.get("LAKEML_WAREHOUSE", "lakeml-warehouse")).resolve()
catalog = load_catalog("lakeml", type="sql", uri=f"sqlite:///{warehouse}/catalog.db",
                       warehouse=warehouse.as_uri())

con = duckdb.connect()
con.execute("INSTALL iceberg; LOAD iceberg")
for name in ("runs", "tags", "params"):
    # iceberg_scan('<table folder>') needs a version-hint.text, which catalog tables lack:
    # give it the current metadata file (`lakeml tables` prints these locations too).
    location = catalog.load_table(f"lakeml.{name}").metadata_location
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM iceberg_scan('{location}')")

# The current state of each run: its latest event.
print(con.sql("""
    SELECT run_name, status FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY event_time DESC, event_seq DESC) AS rn
        FROM runs)
    WHERE rn = 1 ORDER BY run_name""").fetchall())

# Tags as they are now: the latest row per (run, key), deleted tags left out.
print(con.sql("""
    SELECT count(*) FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id, key ORDER BY logged_at DESC) AS rn FROM tags)
    WHERE rn = 1 AND NOT deleted""").fetchone()[0])

# Numeric params as numbers: TRY_CAST gives NULL where a value is not a number.
print(con.sql("""
    SELECT value FROM params WHERE key = 'max_depth'
    ORDER BY TRY_CAST(value AS DOUBLE)""").fetchall())
