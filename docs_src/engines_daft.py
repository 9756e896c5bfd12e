"""docs/engines.md: Daft over a pyiceberg table; the same code runs on a Ray cluster."""

import os
from pathlib import Path

import daft
from daft import Window, col
from daft.functions import row_number
from pyiceberg.catalog import load_catalog

warehouse = Path(os.environ.get("LAKEML_WAREHOUSE", "lakeml-warehouse")).resolve()
catalog = load_catalog("lakeml", type="sql", uri=f"sqlite:///{warehouse}/catalog.db",
                       warehouse=warehouse.as_uri())

if os.environ.get("RAY_ADDRESS"):  # scale out: run the same plan on a Ray cluster
    daft.set_runner_ray(address=os.environ["RAY_ADDRESS"])

runs = daft.read_iceberg(catalog.load_table("lakeml.runs"))
latest = Window().partition_by("run_id").order_by(["event_time", "event_seq"], desc=[True, True])
current = runs.with_column("rn", row_number().over(latest)).where(col("rn") == 1)
print(current.groupby("status").agg(col("run_id").count().alias("runs")).sort("status").to_pydict())

metrics = daft.read_iceberg(catalog.load_table("lakeml.metrics"))
print(metrics.groupby("key").agg(col("value").min().alias("best")).sort("key").to_pydict())
