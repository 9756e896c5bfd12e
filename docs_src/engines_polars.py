"""docs/engines.md: current state from the event-log tables, and typed params, with polars."""

import os
from pathlib import Path

import polars as pl
from pyiceberg.catalog import load_catalog

warehouse = Path(os.environ.get("LAKEML_WAREHOUSE", "lakeml-warehouse")).resolve()
catalog = load_catalog("lakeml", type="sql", uri=f"sqlite:///{warehouse}/catalog.db",
                       warehouse=warehouse.as_uri())

# `runs` is an event log (one row per state change): a run's latest event is its state.
runs = pl.scan_iceberg(catalog.load_table("lakeml.runs"))
current = runs.sort("event_time", "event_seq").group_by("run_id").last()  # order within a group is kept
print(current.select("run_name", "status").sort("run_name").collect().rows())

# `tags` too: the latest row per (run, key) wins, and a deleted tag is a row with deleted = true.
tags = pl.scan_iceberg(catalog.load_table("lakeml.tags"))
tags_now = tags.sort("logged_at").group_by("run_id", "key").last().filter(~pl.col("deleted"))
names = current.select("run_id", "run_name")
print(tags_now.join(names, on="run_id").select("run_name", "key", "value").sort("run_name", "key").collect().rows())

# Params are stored as strings (as in MLflow); cast to sort numbers as numbers: 2 before 10.
params = pl.scan_iceberg(catalog.load_table("lakeml.params"))
depth = params.filter(pl.col("key") == "max_depth").with_columns(
    value_num=pl.col("value").cast(pl.Float64, strict=False))  # null where not a number
print(depth.sort("value_num").select("value").collect().to_series().to_list())
