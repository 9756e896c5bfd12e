"""docs/monitoring.md: log predictions as the scoring service does, feed back labels, run the checks and
the alert rules, read the results in SQL, write the report."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression

import lakeml
from lakeml.serving.predlog import PredictionLogger

lake = lakeml.connect()
rng = np.random.default_rng(1)


def rows(n, shift=0.0):
    x = {"tenure": rng.normal(12 + shift, 4, n), "spend": rng.normal(50 + 10 * shift, 15, n)}
    return x, ((x["tenure"] + rng.normal(0, 1, n) < 10) | (x["spend"] > 75)).astype(np.int64)


x, y = rows(3000)
lake.store.catalog.create_namespace_if_not_exists("demo")
table = lake.store.catalog.create_table("demo.customers", pa.table({**x, "churn": y}).schema)
table.append(pa.table({**x, "churn": y}))
model = LogisticRegression().fit(np.column_stack([x["tenure"], x["spend"]]), y)
run = lake.create_run("churn")
lake.log_input(run.id, table="demo.customers", role="train")  # the snapshot that drift is measured against
lake.log_model(run.id, model, "model")
lake.set_terminated(run.id, "FINISHED")
version = lake.register_model("churn", run_id=run.id).version

# what `lakeml models serve` does for each request: log the rows (here, two hours of yesterday)
start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
logger = PredictionLogger(lake, model_name="churn", model_version=version, model_uri="models:/churn/1")
truth = {}
for hour, shift in ((0, 0.0), (1, 4.0)):
    x, y = rows(1000, shift)
    pred = model.predict(np.column_stack([x["tenure"], x["spend"]]))
    for i in range(1000):
        ts = int((start + timedelta(hours=hour, seconds=i)).timestamp() * 1e6)
        logger.log(f"req-{hour}-{i}", [{"tenure": x["tenure"][i], "spend": x["spend"][i]}], [pred[i]], 3.0, 200,
                   ts_us=ts)
        truth[f"req-{hour}-{i}"] = int(y[i])
logger.close()
Path("rules.yaml").write_text("""\
rules:
  - name: feature_drift
    check: psi
    op: ">"
    threshold: 0.2
    feature: any
  - name: accuracy_low
    when: accuracy < 0.8
""")

# --8<-- [start:feedback]
lake.log_feedback("req-0-0", truth["req-0-0"])                    # one label, when it arrives
lake.log_feedbacks([(rid, label) for rid, label in truth.items()])  # or many: (request_id, label[, row_index])
# --8<-- [end:feedback]

# --8<-- [start:run]
result = lake.monitoring.run("churn", window="1h", rules="rules.yaml")  # idempotent: cron it
print(f"windows computed: {len(result.computed)}")
for alert in result.alerts:
    print(alert.rule, alert.feature, f"{alert.check_name} {alert.op} {alert.threshold}")
accuracy = lake.sql("""SELECT window_start, value FROM lakeml.monitoring_latest
                       WHERE model_name = 'churn' AND check_name = 'accuracy' ORDER BY window_start""").rows()
print("accuracy per hour:", [round(v, 2) for _, v in accuracy])
lake.monitoring.report("monitoring.html")  # plotly charts, no network needed
# --8<-- [end:run]
lake.close()
