"""The README's model registry example: log a model, register it, gate and promote it, load it back."""

import pyarrow as pa
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import roc_auc_score

import lakeml

lake = lakeml.connect()
lake.store.catalog.create_namespace_if_not_exists("analytics")
X, y = load_breast_cancer(return_X_y=True)
features = lake.store.catalog.create_table_if_not_exists(
    "analytics.churn_features", pa.schema([("label", pa.int64())]))
features.append(pa.table({"label": pa.array(y, pa.int64())}))

X_train, y_train, X_val, y_val = X[::2], y[::2], X[1::2], y[1::2]
clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)

# --8<-- [start:registry]
with lakeml.start_run(experiment="churn") as run:
    lakeml.log_input(table="analytics.churn_features", role="train")
    lakeml.log_metric("val_auc", roc_auc_score(y_val, clf.predict_proba(X_val)[:, 1]))
    info = lakeml.log_model(clf, "model", signature=lakeml.infer_signature(X, clf.predict(X)))
mv = lake.register_model("churn", run_id=run.id, artifact_path="model")   # version 1, 2, 3... gap-free
lake.set_gates("churn", min_metrics={"val_auc": 0.85}, required_tags={"approved_by": None},
               aliases=["champion"], environments=["prod"])   # a failing promotion raises GateError
lake.set_model_version_tag("churn", mv.version, "approved_by", "alice")   # the approval the gate asks for
lake.set_alias("churn", "champion", mv.version)
lake.record_deployment("churn", mv.version, environment="prod", service="scoring-api",
                       service_version="2.4.1")
model = lakeml.load_model("models:/churn@champion")         # or models:/churn/1, runs:/<id>/model
lake.model_lineage("churn", mv.version)     # run, params, metrics, git commit, exact input snapshots
lake.models_trained_on("analytics.churn_features")          # the reverse question
# --8<-- [end:registry]

print("version", mv.version, "champion:", lake.get_model_version("churn@champion").version)
print("predictions match:", bool((model.predict(X) == clf.predict(X)).all()))
print("trained on the table:", len(lake.models_trained_on("analytics.churn_features")) == 1)
print(lake.sql("SELECT model_name, version, environment FROM lakeml.deployments_current").rows())
lake.close()
