"""docs/registry.md: the registry in one page, promotion gates, checkpoints."""

from pathlib import Path

import pyarrow as pa
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lakeml

# Setup: a feature table, data and a training function.
catalog = lakeml.connect().store.catalog
catalog.create_namespace_if_not_exists("analytics")
X, y = load_breast_cancer(return_X_y=True)
catalog.create_table_if_not_exists("analytics.churn_features", pa.schema([("label", pa.int64())])).append(
    pa.table({"label": pa.array(y, pa.int64())}))


def train(*_):
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


# --8<-- [start:overview]
import lakeml

lake = lakeml.connect()
with lakeml.start_run(experiment="churn") as run:
    lakeml.log_input(table="analytics.churn_features", role="train")     # the exact snapshot
    model = train(...)
    lakeml.log_metric("val_auc", 0.91)
    lakeml.log_model(model, "model", signature=lakeml.infer_signature(X, model.predict(X)))

mv = lake.register_model("churn", run_id=run.id, artifact_path="model")  # ModelVersion(version=1), then 2...
lake.set_alias("churn", "champion", version=mv.version)
lake.record_deployment("churn", version=mv.version, environment="prod", service="scoring-api",
                       service_version="2.4.1")

model = lakeml.load_model("models:/churn@champion")
lake.model_lineage("churn", mv.version)   # run, params, metrics, code version, input snapshots
lake.models_trained_on("analytics.churn_features")   # the reverse question
# --8<-- [end:overview]
print("overview: version", mv.version, "is", lake.get_model_version("churn@champion").version)

# A second version, from a run that logged what the gates below ask for.
Path("validation").mkdir()
Path("validation/report.html").write_text("<p>AUC 0.93</p>")
Path("docs").mkdir()
Path("docs/model_card.md").write_text("# churn v2")
with lakeml.start_run(experiment="churn") as run:
    lakeml.log_metrics({"val_auc": 0.93, "val_logloss": 0.21})
    lakeml.log_model(train(), "model")
    lakeml.log_artifact("validation/report.html", artifact_path="validation")
    lakeml.log_artifacts("docs", artifact_path="docs")
mv = lake.register_model("churn", run_id=run.id, artifact_path="model")

# --8<-- [start:gates]
lake.set_gates("churn",
               min_metrics={"val_auc": 0.85}, max_metrics={"val_logloss": 0.4},
               required_artifacts=["validation/report.html", "docs"],   # files or folders of the run
               required_tags={"approved_by": ["alice", "bob"]},         # a version tag; None = any value
               aliases=["champion"], environments=["prod"])             # what they guard (default: all)

lake.set_model_version_tag("churn", mv.version, "approved_by", "alice")   # the business owner's approval
lake.check_gates("churn", mv.version, alias="champion")                    # dry run: [] when it passes
lake.set_alias("churn", "champion", mv.version)                            # GateError if a rule fails
# --8<-- [end:gates]
print("gates: champion is version", lake.get_model_version("churn@champion").version)
try:
    lake.set_alias("churn", "champion", 1)
except lakeml.LakemlError as e:
    print("version 1 refused:", type(e).__name__, len(e.failures), "failed rules")

epochs, model_state, losses = 5, {"w": 0.0}, [0.9, 0.5, 0.6, 0.4, 0.45]


def train_one_epoch(state):
    state = {"w": state["w"] + 1}
    return state, losses[int(state["w"]) - 1]


# --8<-- [start:checkpoints]
with lakeml.start_run(experiment="churn") as run:
    for epoch in range(epochs):
        model_state, vl = train_one_epoch(model_state)   # your training step
        lakeml.log_checkpoint(model_state, step=epoch, metric={"val_loss": vl},
                              keep_last=2, keep_best=1, mode="min")
    best = lakeml.load_checkpoint("best")        # or "latest", or a step number
# --8<-- [end:checkpoints]
print("checkpoints: best", best, "kept steps", sorted(c.step for c in lake.list_checkpoints(run.id)))
lake.close()
