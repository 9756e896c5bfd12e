"""The model registry on real tables (file and moto S3): versions, aliases, deployments, gates,
the audit log, typed errors, the projection tables and the sql/ views read through DuckDB."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import lakeml
from lakeml.errors import ConflictError, GateError, InvalidInputError, NotFoundError
from tests.workers.lakes import reopen



def train_and_log(lake, *, experiment="iris", auc=0.9, report=False):
    """One run with a fitted model at 'model' and a metric; returns the run id."""
    X, y = load_iris(return_X_y=True)
    run = lake.create_run(experiment)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    lake.log_metric(run.id, "val_auc", auc)
    lake.log_model(run.id, clf, "model", signature=lakeml.infer_signature(X, clf.predict(X)))
    if report:
        p = Path(tempfile.mkdtemp()) / "report.html"
        p.write_text("<h1>validation</h1>")
        lake.log_artifact(run.id, p, "validation")
    lake.set_terminated(run.id, "FINISHED")
    return run.id


def view(lake, name: str, where: str = "") -> list[dict]:
    """Rows of a registry view, read with DuckDB through lake.sql."""
    return lake.sql_arrow(f"SELECT * FROM lakeml.{name} {where}").to_pylist()

def q(lake, sql: str) -> list[tuple]:
    """Rows of a query through lake.sql (DuckDB over the tables and the sql/ views), as tuples."""
    t = lake.sql_arrow(sql)
    return list(zip(*(c.to_pylist() for c in t.columns))) if t.num_columns else []


@pytest.fixture
def run_id(lake):
    return train_and_log(lake)


def test_register_versions_gap_free_and_resolve_refs(lake, run_id):
    v1 = lake.register_model("churn", run_id=run_id, artifact_path="model", description="first")
    v2 = lake.register_model("churn", run_id=run_id)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.flavor == "sklearn" and v1.signature["inputs"]["shape"] == [-1, 4]
    assert v1.requirements and v1.requirements[0].startswith("scikit-learn==")
    assert v1.source_uri.endswith(f"{run_id}/model") and v1.model_uri == "models:/churn/1"
    lake.set_alias("churn", "champion", 1)
    assert lake.get_model_version("churn@champion").version == 1
    assert lake.get_model_version("churn", 2).description is None
    assert lake.get_model_version("churn/latest").version == 2
    assert lake.get_model_version("models:/churn/1").aliases == ["champion"]
    m = lake.get_model("churn")
    assert m.latest_version == 2 and m.aliases == {"champion": 1}
    # a second client (another process would see the same) reads the same state
    other = reopen(lake)
    try:
        assert [v.version for v in other.list_model_versions("churn")] == [1, 2]
        assert other.get_model_version("churn@champion").run_id == run_id
    finally:
        other.close()


def test_alias_moves_and_points_at_one_version(lake, run_id):
    for _ in range(3):
        lake.register_model("churn", run_id=run_id)
    lake.set_alias("churn", "champion", 1)
    lake.set_alias("churn", "champion", 3)
    assert lake.get_model_version("churn@champion").version == 3
    assert lake.get_model_version("churn", 1).aliases == []
    evs = [e for e in lake.registry_events("churn") if e.event_type == "alias_set"]
    assert [(e.before or {}).get("version") for e in evs] == [None, 1]
    assert [e.after["version"] for e in evs] == [1, 3]
    gone = lake.delete_alias("churn", "champion")
    assert gone.previous_version == 3
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        lake.get_model_version("churn@champion")
    rows = view(lake, "registry_current")
    assert rows[0]["aliases_text"] is None and rows[0]["latest_version"] == 3
    assert view(lake, "model_aliases_latest") == []  # a deleted alias is not current
    assert [r["version"] for r in view(lake, "model_versions_latest", "ORDER BY version")] == [1, 2, 3]


def test_deployments_supersede_and_retire(lake, run_id):
    for _ in range(2):
        lake.register_model("churn", run_id=run_id)
    d1 = lake.record_deployment("churn", 1, environment="prod", service="scoring-api", service_version="2.4.0")
    lake.record_deployment("churn", 1, environment="staging", service="scoring-api")
    d2 = lake.record_deployment("churn", 2, environment="prod", service="scoring-api", service_version="2.4.1")
    live = lake.list_deployments("churn")
    assert {(d.environment, d.version) for d in live} == {("prod", 2), ("staging", 1)}
    everything = lake.list_deployments("churn", active_only=False)
    old = next(d for d in everything if d.deployment_id == d1.deployment_id)
    assert old.retired_at is not None and d2.deployment_id in old.retire_reason
    # same version, same service version again: nothing new is recorded
    assert lake.record_deployment("churn", 2, environment="prod", service="scoring-api",
                                  service_version="2.4.1").deployment_id == d2.deployment_id
    rows = view(lake, "deployments_current", "ORDER BY environment")
    assert [(r["environment"], r["version"], r["service_version"]) for r in rows] == \
        [("prod", 2, "2.4.1"), ("staging", 1, None)]
    assert rows[0]["run_id"] == run_id and rows[0]["model_uri"] == "models:/churn/2"
    retired = lake.retire_deployment("churn", environment="staging", reason="load test over")
    assert [d.version for d in retired] == [1]
    assert [r["environment"] for r in view(lake, "deployments_current")] == ["prod"]
    states = {(r["environment"], r["version"]): r["retired_at"] is not None
              for r in view(lake, "deployments_latest")}
    assert states == {("prod", 1): True, ("staging", 1): True, ("prod", 2): False}


def test_every_change_is_in_registry_events_with_before_and_after(lake, run_id):
    lake.register_model("churn", run_id=run_id)
    lake.set_model_version_tag("churn", 1, "approved_by", "alice")
    lake.set_alias("churn", "champion", 1)
    lake.record_deployment("churn", 1, environment="prod", service="api")
    evs = lake.registry_events("churn")
    assert [e.event_seq for e in evs] == list(range(1, len(evs) + 1))
    assert [e.event_type for e in evs] == ["model_created", "version_registered", "version_updated", "alias_set",
                                           "deployed"]
    upd = evs[2]
    assert upd.before["tags"] == {} and upd.after["tags"] == {"approved_by": "alice"}
    assert all(e.actor and e.event_time and e.outcome == "applied" for e in evs)
    [(n, seqs)] = q(lake, "SELECT count(*), list(event_seq ORDER BY event_seq) FROM lakeml.registry_events")
    assert n == 5 and seqs == [1, 2, 3, 4, 5]
    # the projection tables hold the same, one row per applied event of their kind
    assert q(lake, "SELECT count(*) FROM lakeml.model_versions") == [(2,)]
    [(tags,)] = q(lake, "SELECT tags FROM lakeml.model_versions ORDER BY event_seq DESC LIMIT 1")
    assert dict(tags) == {"approved_by": "alice"}
    assert q(lake, "SELECT version FROM lakeml.model_aliases") == [(1,)]
    [(after,)] = q(lake, "SELECT after FROM lakeml.registry_events WHERE event_seq = 4")
    assert json.loads(after)["alias"] == "champion"


def test_gates_refuse_a_failing_version_and_pass_a_good_one(lake):
    weak = train_and_log(lake, auc=0.70)
    strong = train_and_log(lake, auc=0.93, report=True)
    lake.register_model("churn", run_id=weak)
    lake.register_model("churn", run_id=strong)
    lake.set_gates("churn", min_metrics={"val_auc": 0.85}, required_artifacts=["validation"],
                   required_tags={"approved_by": ["alice", "bob"]}, aliases=["champion"], environments=["prod"])
    with pytest.raises(GateError) as e:
        lake.set_alias("churn", "champion", 1)
    fails = e.value.failures
    assert len(fails) == 3
    assert any("'val_auc' is 0.7; the minimum is 0.85" in f for f in fails)
    assert any("artifact 'validation'" in f for f in fails)
    assert any("'approved_by' is required" in f for f in fails)
    assert "3 gate rule(s) failed" in str(e.value)
    # unguarded promotions are free
    lake.set_alias("churn", "challenger", 1)
    lake.record_deployment("churn", 1, environment="staging", service="api")
    # the good version, once approved by an allowed approver, passes
    lake.set_model_version_tag("churn", 2, "approved_by", "mallory")
    with pytest.raises(GateError, match="must be one of 'alice', 'bob'"):
        lake.record_deployment("churn", 2, environment="prod", service="api")
    lake.set_model_version_tag("churn", 2, "approved_by", "alice")
    assert lake.check_gates("churn", 2, alias="champion") == []
    lake.set_alias("churn", "champion", 2)
    lake.record_deployment("churn", 2, environment="prod", service="api")
    evs = lake.registry_events("churn")
    refused = [e for e in evs if e.outcome == "refused"]
    assert [(e.event_type, e.alias, e.environment) for e in refused] == \
        [("promotion_refused", "champion", None), ("promotion_refused", None, "prod")]
    assert "val_auc" in refused[0].message
    passed = [e for e in evs if e.event_type in ("alias_set", "deployed") and e.version == 2]
    assert all(e.message == "passed 3 gate rule(s)" for e in passed)
    assert lake.get_model_version("churn@champion").version == 2
    assert lake.get_gates("churn").min_metrics == {"val_auc": 0.85}


def test_bad_input_gets_typed_errors(file_lake):
    lake = file_lake
    run_id = train_and_log(lake)
    lake.register_model("churn", run_id=run_id)
    with pytest.raises(NotFoundError, match="no registered model named 'nope'"):
        lake.get_model("nope")
    with pytest.raises(NotFoundError, match="has no version 7 .versions 1..1."):
        lake.get_model_version("churn", 7)
    with pytest.raises(NotFoundError, match="no alias 'gold'"):
        lake.get_model_version("churn@gold")
    with pytest.raises(NotFoundError, match="no version 5"):
        lake.record_deployment("churn", 5, environment="prod", service="api")
    with pytest.raises(NotFoundError, match="no registered model"):
        lake.record_deployment("ghost", 1, environment="prod", service="api")
    with pytest.raises(NotFoundError):
        lake.set_alias("churn", "champion", 9)
    for bad in ("latest", "LATEST", "v3", "V12", "3"):
        with pytest.raises(InvalidInputError):
            lake.set_alias("churn", bad, 1)
    with pytest.raises(InvalidInputError, match="reserved"):
        lake.set_alias("churn", "latest", 1)
    with pytest.raises(InvalidInputError, match="looks like a version"):
        lake.set_alias("churn", "v3", 1)
    with pytest.raises(InvalidInputError, match="invalid model name"):
        lake.register_model("churn/2", run_id=run_id)
    with pytest.raises(InvalidInputError, match="integer >= 1"):
        lake.get_model_version("churn", 0)
    with pytest.raises(NotFoundError, match="nothing is stored"):
        lake.register_model("churn", run_id=run_id, artifact_path="no-such-model")
    with pytest.raises(NotFoundError):
        lake.register_model("churn", run_id="0" * 32)
    with pytest.raises(InvalidInputError):
        lake.register_model("churn", run_id="not-a-run")
    with pytest.raises(NotFoundError, match="no active deployment"):
        lake.retire_deployment("churn", environment="prod")
    with pytest.raises(InvalidInputError, match="finite number"):
        lake.set_gates("churn", min_metrics={"auc": "high"})
    with pytest.raises(ConflictError, match="already has artifacts at 'model'"):
        lake.log_model(run_id, LogisticRegression(), "model")
    # nothing above changed the registry
    assert [e.event_type for e in lake.registry_events()] == ["model_created", "version_registered"]


def test_registry_tables_follow_the_catalog_contract(file_lake):
    lake = file_lake
    from lakeml.storage.contract import load_contracts

    contracts = load_contracts()
    for name in ("registered_models", "model_versions", "model_aliases", "deployments", "registry_events",
                 "checkpoints"):
        c = contracts[name]
        assert c.doc and all(f.doc for f in c.fields), name
        assert [f.id for f in c.fields] == list(range(1, len(c.fields) + 1))
        if name != "checkpoints":
            assert c.properties["commit.retry.num-retries"] == "0"
    lake.init()
    tbl = lake.store.table("registry_events", refresh=True)
    assert tbl.properties["commit.retry.num-retries"] == "0"
    assert tbl.schema().find_field("before").doc.startswith("JSON of the record before")


def assert_stale_append_refused(lake) -> None:
    """Two handles on registry_events at the same snapshot both append: the second must be refused."""
    from pyiceberg.exceptions import CommitFailedException

    from lakeml.storage.committer import rows_to_arrow

    ident = lake.store.identifier("registry_events")
    t1, t2 = lake.store.catalog.load_table(ident), lake.store.catalog.load_table(ident)
    contract = lake.store.contracts["registry_events"]
    row = (99, "x" * 32, 0, "model_updated", "applied", "churn", None, None, None, None, "model", "churn", "t",
           None, None, None, None, None, None)
    t1.append(rows_to_arrow(contract, [row]))
    with pytest.raises(CommitFailedException):
        t2.append(rows_to_arrow(contract, [row]))


def test_a_stale_append_to_the_ledger_fails(lake, run_id):
    """The CAS the registry relies on: pyiceberg's append asserts the branch head (AssertRefSnapshotId)
    and, with commit.retry.num-retries=0, never rebases a stale append onto the new head."""
    lake.register_model("churn", run_id=run_id)
    assert_stale_append_refused(lake)
    ident = lake.store.identifier("registry_events")
    assert len(lake.store.catalog.load_table(ident).scan().to_arrow()) == 3


def test_projections_catch_up_after_a_lost_write(lake, run_id):
    """If a process dies between the ledger commit and its projections, the next change repairs them."""
    from lakeml.registry.ledger import PROJECTIONS

    led = lake.registry.ledger
    sync, led._sync = led._sync, lambda fold: {}  # simulate the crash window
    try:
        lake.register_model("churn", run_id=run_id)
    finally:
        led._sync = sync
    assert q(lake, "SELECT count(*) FROM lakeml.model_versions") == [(0,)]
    other = reopen(lake)
    try:
        other.register_model("churn", run_id=run_id)
        assert q(other, "SELECT version FROM lakeml.model_versions ORDER BY version") == [(1,), (2,)]
        assert other.sync_registry() == {t: 0 for t in PROJECTIONS.values()}
    finally:
        other.close()


def test_model_search_and_listing(file_lake):
    lake = file_lake
    run_id = train_and_log(lake)
    lake.create_model("fraud", description="card fraud scores", tags={"team": "risk"})
    lake.register_model("churn", run_id=run_id, tags={"stage": "candidate"})
    assert [m.name for m in lake.list_models()] == ["churn", "fraud"]
    assert [m.name for m in lake.search_models("fraud")] == ["fraud"]
    assert [m.name for m in lake.search_models(tags={"team": "risk"})] == ["fraud"]
    assert [mv.version for mv in lake.search_model_versions(run_id=run_id)] == [1]
    assert lake.search_model_versions("churn", tags={"stage": "candidate"})[0].version == 1
    lake.update_model("fraud", description="card fraud", tags={"tier": "1"})
    m = lake.get_model("fraud")
    assert m.description == "card fraud" and m.tags == {"team": "risk", "tier": "1"} and m.latest_version is None


def test_register_best_model_for_the_demo(file_lake):
    lake = file_lake
    ids = [train_and_log(lake, experiment="demo", auc=a) for a in (0.81, 0.95, 0.88)]
    mv = lake.register_best_model("churn", experiment="demo", metric="val_auc")
    assert mv.run_id == ids[1] and mv.aliases == ["champion"]
    again = lake.register_best_model("churn", experiment="demo", metric="val_auc")
    assert again.version == mv.version and len(lake.list_model_versions("churn")) == 1
    X, _ = load_iris(return_X_y=True)
    assert lake.load_model("models:/churn@champion").predict(X[:2]).shape == (2,)


def test_register_refuses_a_folder_without_a_model(file_lake, tmp_path):
    lake = file_lake
    plain = tmp_path / "certs"
    plain.mkdir()
    (plain / "ca.pem").write_text("not a model")
    with pytest.raises(InvalidInputError, match=r"certs holds no model: there is no MLmodel file"):
        lake.register_model("x", source_uri=str(plain))
    run = lake.create_run("no-model")
    lake.log_artifact(run.id, plain / "ca.pem", "model")  # artifacts at 'model', but no saved model
    with pytest.raises(InvalidInputError, match=rf"runs:/{run.id}/model holds no model"):
        lake.register_model("x", run_id=run.id)
    assert lake.list_models() == [], "nothing was registered"
