"""docs/tracking.md: the explicit client, searching runs, logging whole series at once."""

import numpy as np

# --8<-- [start:client]
import lakeml
from lakeml import Metric, Param, RunTag

lake = lakeml.connect()                       # or connect("prod"), connect(warehouse="/data/lake")
run = lake.create_run("churn", run_name="r1", tags={"team": "growth"})
lake.log_params(run.run_id, {"lr": 0.1})
lake.log_metric(run.run_id, "loss", 0.25, step=3)
lake.log_batch(run.run_id, metrics=[Metric("auc", 0.9, step=3)], params=[Param("depth", 6)],
               tags=[RunTag("stage", "dev")])
lake.set_terminated(run.run_id, "FINISHED")   # also FAILED (error="..."), KILLED
lake.close()
# --8<-- [end:client]

lake = lakeml.connect()
for name, model, auc in [("a", "xgb", 0.91), ("b", "lgbm", 0.87), ("c", "xgb", 0.80), ("d", "rf", 0.95)]:
    r = lake.create_run("churn", run_name=name, tags={"team": "growth"})
    lake.log_params(r.run_id, {"model": model})
    lake.log_metric(r.run_id, "auc", auc)
    lake.set_terminated(r.run_id)

# --8<-- [start:search]
lake.search_runs("churn", "params.model IN ('xgb', 'lgbm') AND metrics.auc > 0.85 AND tags.team = 'growth'",
                 order_by=["metrics.auc DESC"], max_results=10)
# --8<-- [end:search]
found = lake.search_runs("churn", "params.model IN ('xgb', 'lgbm') AND metrics.auc > 0.85 AND tags.team = 'growth'",
                         order_by=["metrics.auc DESC"], max_results=10)
print("search:", found["run_name"].to_list())

losses = np.exp(-np.arange(1_000) / 200)
# --8<-- [start:columnar]
lake.log_batch(run.run_id, metrics={"key": "loss", "value": losses, "step": np.arange(len(losses))})
# --8<-- [end:columnar]
print("points:", lake.get_metric_history(run.run_id, "loss").height)
print("params:", sorted(lake.get_run(run.run_id).params.items()))
lake.close()
