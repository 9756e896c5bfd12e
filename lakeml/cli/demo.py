"""``lakeml demo``: a small, real training job that shows every part of the tracking API.

It writes scikit-learn's breast-cancer data set (it ships with scikit-learn, nothing is
downloaded) as the Iceberg table ``demo.breast_cancer`` in the lake's own catalog, reads it
back, trains a few real models under one parent run, and logs for each of them:
params, per-iteration metrics, the input lineage (the table's snapshot), the pickled
model and a JSON report as artifacts. It ends with a leaderboard from ``search_runs``.

This is application code (layer 1): it only uses the public client.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lakeml.errors import MissingDependencyError

DEMO_EXPERIMENT = "demo"
DEMO_TABLE = "demo.breast_cancer"
DEMO_MODEL = "demo-breast-cancer"
LEADERBOARD_METRIC = "val_auc"


@dataclass
class DemoResult:
    experiment: str
    parent_run_id: str
    table: str
    snapshot_id: int
    leaderboard: list[dict[str, Any]]
    champion: dict[str, Any] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "parent_run_id": self.parent_run_id, "table": self.table,
                "snapshot_id": self.snapshot_id, "leaderboard": self.leaderboard, "champion": self.champion,
                "seconds": round(self.seconds, 2), **self.extra}


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("the demo trains scikit-learn models: pip install 'lakeml[sklearn]'") from e


# -- the input data set, as an Iceberg table --------------------------------------------------

def dataset_arrow(seed: int = 0):
    """The breast-cancer data set as Arrow: row_id, split (train/validation), 30 features, target."""
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    ds = load_breast_cancer()
    n = len(ds.target)
    _, val_idx = train_test_split(np.arange(n), test_size=0.2, random_state=seed, stratify=ds.target)
    split = np.full(n, "train", dtype=object)
    split[val_idx] = "validation"
    cols: dict[str, Any] = {"row_id": pa.array(np.arange(n, dtype=np.int64)), "split": pa.array(split.tolist())}
    for j, name in enumerate(ds.feature_names):
        cols[str(name).replace(" ", "_")] = pa.array(ds.data[:, j].astype(np.float64))
    cols["target"] = pa.array(ds.target.astype(np.int64))  # 1 = benign, 0 = malignant
    return pa.table(cols)


def ensure_dataset_table(catalog: Any, identifier: str = DEMO_TABLE):
    """Create ``identifier`` with the data set, or reuse it if it already holds it; returns the table."""
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError

    data = dataset_arrow()
    namespace = identifier.rsplit(".", 1)[0]
    try:
        tbl = catalog.load_table(identifier)
    except NoSuchTableError:
        try:
            catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
        try:
            tbl = catalog.create_table(identifier, data.schema, properties={
                "comment": "scikit-learn's breast-cancer data set with a fixed train/validation split "
                           "(written by 'lakeml demo')"})
        except TableAlreadyExistsError:  # a concurrent demo created it
            tbl = catalog.load_table(identifier)
    snap = tbl.current_snapshot()
    rows = int(snap.summary.get("total-records", -1)) if snap is not None and snap.summary else -1
    if snap is None:
        tbl.append(data)
    elif rows != data.num_rows:
        tbl.overwrite(data)
    return tbl


def _arrays(tbl: Any, snapshot_id: int):
    """Read the exact snapshot back from Iceberg and split it into train/validation arrays."""
    import numpy as np

    arrow = tbl.scan(snapshot_id=snapshot_id).to_arrow().sort_by("row_id")
    features = [c for c in arrow.column_names if c not in ("row_id", "split", "target")]
    X = np.column_stack([arrow[c].to_numpy() for c in features])
    y = arrow["target"].to_numpy()
    is_val = np.asarray(arrow["split"].to_pylist()) == "validation"
    return X[~is_val], y[~is_val], X[is_val], y[is_val], features


# -- the models ---------------------------------------------------------------------------------

def model_grid() -> list[dict[str, Any]]:
    """The models the demo trains: a small gradient-boosting sweep and a linear baseline."""
    gb = [(1, 0.3), (2, 0.1), (3, 0.1), (3, 0.3)]
    grid = [{"name": f"gbt-depth{d}-lr{lr}", "family": "gradient_boosting",
             "params": {"n_estimators": 120, "max_depth": d, "learning_rate": lr, "subsample": 0.8,
                        "random_state": 0}} for d, lr in gb]
    grid.append({"name": "sgd-logreg", "family": "linear",
                 "params": {"loss": "log_loss", "alpha": 1e-3, "epochs": 40, "random_state": 0}})
    return grid


def _scores(y: Any, proba: Any) -> dict[str, float]:
    """Log loss, accuracy and ROC AUC of P(class 1); the same values as sklearn.metrics, computed with
    numpy so that scoring every boosting stage stays cheap."""
    import numpy as np
    from scipy.stats import rankdata

    eps = np.finfo(np.float64).eps  # as sklearn.metrics.log_loss
    p = np.clip(proba, eps, 1 - eps)
    loss = -float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    acc = float(np.mean((proba >= 0.5) == (y == 1)))
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    auc = float((rankdata(proba)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))  # Mann-Whitney U
    return {"loss": loss, "accuracy": acc, "auc": auc}


def _train_gbt(spec: dict[str, Any], data: tuple, log: Callable[[dict[str, float], int], None]):
    from sklearn.ensemble import GradientBoostingClassifier

    Xtr, ytr, Xva, yva = data
    model = GradientBoostingClassifier(**spec["params"]).fit(Xtr, ytr)
    for step, (p_tr, p_va) in enumerate(zip(model.staged_predict_proba(Xtr), model.staged_predict_proba(Xva))):
        tr, va = _scores(ytr, p_tr[:, 1]), _scores(yva, p_va[:, 1])
        log({"train_loss": tr["loss"], "val_loss": va["loss"], "val_accuracy": va["accuracy"],
             "val_auc": va["auc"]}, step)
    return model


def _train_sgd(spec: dict[str, Any], data: tuple, log: Callable[[dict[str, float], int], None]):
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xtr, ytr, Xva, yva = data
    p = dict(spec["params"])
    epochs = p.pop("epochs")
    scaler = StandardScaler().fit(Xtr)
    clf = SGDClassifier(**p)
    Str, Sva = scaler.transform(Xtr), scaler.transform(Xva)
    for step in range(epochs):
        clf.partial_fit(Str, ytr, classes=[0, 1])
        tr, va = _scores(ytr, clf.predict_proba(Str)[:, 1]), _scores(yva, clf.predict_proba(Sva)[:, 1])
        log({"train_loss": tr["loss"], "val_loss": va["loss"], "val_accuracy": va["accuracy"],
             "val_auc": va["auc"]}, step)
    return make_pipeline(scaler, clf)


def _report(model: Any, data: tuple, features: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    from sklearn.metrics import classification_report, confusion_matrix

    _, _, Xva, yva = data
    pred = model.predict(Xva)
    out: dict[str, Any] = {"model": spec["name"], "params": spec["params"],
                           "confusion_matrix": confusion_matrix(yva, pred).tolist(),
                           "classification_report": classification_report(
                               yva, pred, target_names=["malignant", "benign"], output_dict=True)}
    if hasattr(model, "feature_importances_"):
        ranked = sorted(zip(features, model.feature_importances_), key=lambda kv: -kv[1])[:10]
        out["top_features"] = {k: round(float(v), 4) for k, v in ranked}
    return out


# -- the job ------------------------------------------------------------------------------------

def register_champion(lake: Any, best: dict[str, Any]) -> dict[str, Any] | None:
    """Model-registry step of the demo: register the best run's model with alias ``champion``."""
    mv = lake.registry.register_model(DEMO_MODEL, run_id=best["run_id"], artifact_path="model",
                             description=f"best of the demo sweep by {LEADERBOARD_METRIC}")
    lake.registry.set_alias(DEMO_MODEL, "champion", mv.version)
    return {"model": DEMO_MODEL, "version": mv.version, "alias": "champion",
            "uri": f"models:/{DEMO_MODEL}@champion", "run_id": best["run_id"]}


def run_demo(lake: Any, *, experiment: str = DEMO_EXPERIMENT, table: str = DEMO_TABLE,
             progress: Callable[[str], None] = lambda msg: None) -> DemoResult:
    """Train the demo models into ``lake`` and return the leaderboard."""
    _sklearn()

    import lakeml

    t0 = time.perf_counter()
    tbl = ensure_dataset_table(lake.store.catalog, table)
    snapshot_id = tbl.current_snapshot().snapshot_id
    Xtr, ytr, Xva, yva, features = _arrays(tbl, snapshot_id)
    data = (Xtr, ytr, Xva, yva)
    progress(f"data set {table} (snapshot {snapshot_id}): {len(ytr)} train rows, {len(yva)} validation rows, "
             f"{len(features)} features")

    with lakeml.start_run(experiment=experiment, run_name="sweep", lake=lake,
                          tags={"lakeml.demo": "true"}) as parent, tempfile.TemporaryDirectory() as tmp:
        lakeml.log_input(table=table, role="train", snapshot_id=snapshot_id)
        lakeml.log_params({"dataset": table, "models": len(model_grid())})
        for spec in model_grid():
            t1 = time.perf_counter()
            with lakeml.start_run(experiment=experiment, run_name=spec["name"], nested=True, lake=lake,
                                  tags={"model_family": spec["family"], "lakeml.demo": "true"}):
                lakeml.log_params({"model": spec["name"], **spec["params"]})
                lakeml.log_input(table=table, role="train", snapshot_id=snapshot_id)
                train = _train_gbt if spec["family"] == "gradient_boosting" else _train_sgd
                model = train(spec, data, lambda m, step: lakeml.log_metrics(m, step=step))
                out = Path(tmp) / spec["name"]
                out.mkdir()
                (out / "report.json").write_text(json.dumps(_report(model, data, features, spec), indent=2))
                lakeml.log_model(model, "model", signature=lakeml.infer_signature(Xva[:5], model.predict(Xva[:5])))
                lakeml.log_artifact(str(out / "report.json"))
            progress(f"trained {spec['name']:<18} in {time.perf_counter() - t1:.1f} s")

        board = leaderboard(lake, experiment, parent.id)
        if board:
            best = board[0]
            lakeml.set_tags({"best_run_id": best["run_id"], "best_model": best["run_name"]})
            lakeml.log_metric(f"best_{LEADERBOARD_METRIC}", best[LEADERBOARD_METRIC])
    champion = register_champion(lake, board[0]) if board else None
    return DemoResult(experiment, parent.id, table, snapshot_id, board, champion, time.perf_counter() - t0)


def leaderboard(lake: Any, experiment: str, parent_run_id: str) -> list[dict[str, Any]]:
    """The child runs of ``parent_run_id``, best validation AUC first."""
    df = lake.query.search_runs(experiment, filter_string=f"attributes.parent_run_id = '{parent_run_id}'",
                          order_by=[f"metrics.{LEADERBOARD_METRIC} DESC", "metrics.val_loss ASC"])
    rows = []
    for rank, r in enumerate(df.iter_rows(named=True), 1):
        rows.append({"rank": rank, "run_name": r["run_name"], "val_auc": r.get("metrics.val_auc"),
                     "val_accuracy": r.get("metrics.val_accuracy"), "val_loss": r.get("metrics.val_loss"),
                     "max_depth": r.get("params.max_depth"), "learning_rate": r.get("params.learning_rate"),
                     "run_id": r["run_id"]})
    return rows
