"""CI step "evaluate": score the run's model on the held-out rows and log val_accuracy and val_auc."""

import argparse

from sklearn.metrics import roc_auc_score

import lakeml

p = argparse.ArgumentParser()
p.add_argument("--run-id", required=True)
p.add_argument("--table", default="ci.churn_features")
a = p.parse_args()

lake = lakeml.connect()
df = lake.store.catalog.load_table(a.table).scan().to_pandas()
test = df[df.row_id % 5 == 0]
X = test[[c for c in df.columns if c.startswith("f")]]
model = lake.load_model(f"runs:/{a.run_id}/model")
acc = float((model.predict(X) == test.label).mean())
auc = float(roc_auc_score(test.label, model.predict_proba(X)[:, 1]))
lake.log_metric(a.run_id, "val_accuracy", acc)
lake.log_metric(a.run_id, "val_auc", auc)
print(f"val_accuracy={acc:.3f} val_auc={auc:.3f}")
lake.close()
