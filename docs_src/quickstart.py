"""The README's quickstart: log a run with the fluent API, then read it back with the client."""

from pathlib import Path

import pyarrow as pa

import lakeml

# Setup: a lakehouse table for the run to read, and a file to store as an artifact.
catalog = lakeml.connect().store.catalog
catalog.create_namespace_if_not_exists("analytics")
features = catalog.create_table_if_not_exists(
    "analytics.churn_features", pa.schema([("customer_id", pa.int64()), ("tenure", pa.float64())]))
features.append(pa.table({"customer_id": [1, 2, 3], "tenure": [3.0, 14.0, 27.0]}))
Path("model.pkl").write_bytes(b"a trained model")

# --8<-- [start:log]
import math

import lakeml

with lakeml.start_run(experiment="churn", run_name="xgb-depth6", tags={"team": "growth"}) as run:
    lakeml.log_params({"lr": 0.1, "max_depth": 6})
    lakeml.log_input(table="analytics.churn_features", role="train")   # records the Iceberg snapshot id
    for step in range(10_000):
        loss = math.exp(-step / 2_000)
        lakeml.log_metric("loss", loss, step=step)                      # an in-memory append: no I/O
    lakeml.log_artifact("model.pkl")                                    # a file (log_artifacts: a folder)
# --8<-- [end:log]

# --8<-- [start:read]
lake = lakeml.connect()                       # same configuration rules as the fluent API
run = lake.get_run(run.id)                    # params, latest metrics, tags, inputs
df = lake.search_runs("churn", filter_string="metrics.loss < 0.1 AND params.max_depth = '6'",
                      order_by=["metrics.loss ASC"])            # a polars DataFrame
history = lake.get_metric_history(run.run_id, "loss")           # every point, by step
lake.download_artifacts(run.run_id, "model.pkl", "out/")
data = lake.load_input(run.run_id, "analytics.churn_features")  # exactly the snapshot the run read
# --8<-- [end:read]

print(run.status.value, run.params["max_depth"], run.tags["team"])
print(df.height, "run found;", len(history), "points;", data.num_rows, "input rows")
print(Path("out/model.pkl").read_bytes().decode())
