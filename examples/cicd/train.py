"""CI step "train": fit a classifier on an Iceberg table and log it as a lakeml run.

The lake comes from the environment ($LAKEML_CATALOG, or $LAKEML_WAREHOUSE for a warehouse folder).
On the first run the feature table is created with synthetic rows (so the example runs anywhere); the
run records the table's snapshot (lineage), its params, and the model with its signature. The run id
is written to --out for the next steps.
"""

import argparse

import numpy as np
import pyarrow as pa
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import lakeml

p = argparse.ArgumentParser()
p.add_argument("--table", default="ci.churn_features")
p.add_argument("--experiment", default="churn-ci")
p.add_argument("--C", type=float, default=1.0)
p.add_argument("--out", default="run_id.txt")
a = p.parse_args()

lake = lakeml.connect()
catalog = lake.store.catalog
ns = a.table.split(".")[0]
catalog.create_namespace_if_not_exists(ns)
FEATURES = [f"f{i}" for i in range(6)]
schema = pa.schema([("row_id", pa.int64()), *[(f, pa.float64()) for f in FEATURES], ("label", pa.int64())])
table = catalog.create_table_if_not_exists(a.table, schema)
if table.current_snapshot() is None:  # seed the example data once
    X, y = make_classification(n_samples=2000, n_features=6, n_informative=4, random_state=7)
    table.append(pa.table({"row_id": np.arange(len(y)), **{f: X[:, i] for i, f in enumerate(FEATURES)},
                           "label": y.astype("int64")}, schema=schema))
    table = catalog.load_table(a.table)

df = table.scan().to_pandas()
train = df[df.row_id % 5 != 0]
clf = LogisticRegression(C=a.C, max_iter=500).fit(train[FEATURES], train.label)

with lakeml.start_run(experiment=a.experiment) as run:
    lakeml.log_input(table=a.table, role="train")
    lakeml.log_params({"C": a.C, "model": "LogisticRegression"})
    lakeml.log_metric("train_accuracy", float((clf.predict(train[FEATURES]) == train.label).mean()))
    lakeml.log_model(clf, "model", signature=lakeml.infer_signature(train[FEATURES], clf.predict(train[FEATURES])))
with open(a.out, "w") as f:
    f.write(run.id + "\n")
print(f"trained run {run.id}")
lake.close()
