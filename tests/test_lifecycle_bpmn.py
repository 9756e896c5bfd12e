"""BPMN files: the shipped default, a custom one with a parallel gateway, and bad ones rejected at
load with the element id at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeml.errors import InvalidInputError
from lakeml.identity import acting_as
from lakeml.lifecycle.process import Deliverable, load_process, parse_bpmn

DATA = Path(__file__).resolve().parent / "data"
PARALLEL = DATA / "lifecycle_parallel.bpmn"

HEAD = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">'
        '<bpmn:process id="p" isExecutable="true">')
TAIL = '</bpmn:process></bpmn:definitions>'


def bpmn(body: str, *, lanes: str = '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="analyst">'
         '<bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>t1</bpmn:flowNodeRef>'
         '<bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>') -> bytes:
    flow = ('<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="a" sourceRef="s" targetRef="t1"/>'
            '<bpmn:sequenceFlow id="b" sourceRef="t1" targetRef="e"/><bpmn:endEvent id="e"/>')
    return (HEAD + lanes + flow + body + TAIL).encode()


def task(props: str, tid: str = "t1") -> str:
    return (f'<bpmn:userTask id="{tid}" name="Step one"><bpmn:extensionElements><spiffworkflow:properties>'
            f'{props}</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>')


def test_default_process_has_the_steps_lanes_and_deliverables():
    prc = load_process()
    assert list(prc.steps) == ["problem_statement", "data_mart", "experiments", "validation", "approval",
                               "packaging", "deployment", "monitoring_setup"]
    assert prc.roles == ["customer", "data_engineer", "data_scientist", "mlops_engineer", "validator"]
    assert [str(d) for d in prc.steps["data_mart"].deliverables] == ["link:mart_code", "link:mart", "doc:mart"]
    assert prc.steps["approval"].deliverables == (Deliverable("approval", "customer"),)
    assert prc.end_status == {"in_production": "in_production", "cancelled": "cancelled"}


def test_a_small_valid_file_loads():
    prc = parse_bpmn(bpmn(task('<spiffworkflow:property name="deliverable" value="metric:auc >= 0.8"/>')))
    (d,) = prc.steps["t1"].deliverables
    assert (d.kind, d.name, d.op, d.bound, str(d)) == ("metric", "auc", ">=", 0.8, "metric:auc >= 0.8")


def test_unknown_deliverable_kind_names_the_element():
    with pytest.raises(InvalidInputError) as e:
        parse_bpmn(bpmn(task('<spiffworkflow:property name="deliverable.1" value="dashboard:grafana"/>')))
    msg = str(e.value)
    assert "BPMN element 't1'" in msg and "unknown deliverable kind 'dashboard'" in msg and "link:mart" in msg


def test_task_without_lane_names_the_element():
    body = task("") + task("", tid="t2").replace('name="Step one"', 'name="Orphan"')
    body = body.replace("</bpmn:userTask>", "</bpmn:userTask>", 1)
    data = bpmn(body + '<bpmn:sequenceFlow id="c" sourceRef="s" targetRef="t2"/>')
    with pytest.raises(InvalidInputError, match=r"BPMN element 't2' \(Orphan user task\) is in no lane"):
        parse_bpmn(data)


@pytest.mark.parametrize("props, needle", [
    ('<spiffworkflow:property name="deliverable" value="metric:auc high"/>', "metric:<key> >= <number>"),
    ('<spiffworkflow:property name="deliverable" value="link:"/>', "names nothing after 'link:'"),
    ('<spiffworkflow:property name="status" value="done"/>', "unknown status 'done'"),
    ('<spiffworkflow:property name="sla_days" value="soon"/>', "sla_days must be a number"),
])
def test_bad_properties_name_the_element(props, needle):
    with pytest.raises(InvalidInputError) as e:
        parse_bpmn(bpmn(task(props)))
    assert "'t1'" in str(e.value) and needle in str(e.value)


def test_not_bpmn_at_all():
    with pytest.raises(InvalidInputError, match="cannot parse BPMN|invalid BPMN"):
        parse_bpmn(b"<not-bpmn/>")
    with pytest.raises(InvalidInputError, match="cannot parse BPMN"):
        parse_bpmn(b"<<<")


def test_create_with_a_bad_file_fails_before_anything_is_written(file_lake, tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(bpmn(task('<spiffworkflow:property name="deliverable" value="wiki:page"/>')))
    with pytest.raises(InvalidInputError, match="BPMN element 't1'"):
        file_lake.projects.create("x", process=bad)
    assert file_lake.projects.list() == []


def test_custom_process_with_a_parallel_gateway(file_lake):
    import pyarrow as pa

    lake = file_lake
    roles = {"data_engineer": "dan", "data_scientist": "sam", "customer": "carol"}
    with acting_as("carol"):
        p = lake.projects.create("par", process=PARALLEL, roles=roles, models=["churn"], experiments=["par"])
    assert p.status == "in_development"
    assert sorted(t.task_id for t in lake.projects.tasks("par")) == ["mart", "train"]  # both branches at once

    # the table deliverable: the Iceberg table must exist and hold data; its snapshot is recorded
    with acting_as("dan"), pytest.raises(InvalidInputError, match="table:sales.churn_mart: no such Iceberg table"):
        lake.projects.complete("par", "mart")
    cat = lake.store.catalog
    cat.create_namespace("sales")
    tbl = cat.create_table("sales.churn_mart", schema=pa.schema([("customer", pa.string()), ("churned", pa.bool_())]))
    tbl.append(pa.table({"customer": ["a", "b"], "churned": [True, False]}))
    snap = cat.load_table("sales.churn_mart").current_snapshot().snapshot_id
    with acting_as("dan"):
        assert lake.projects.complete("par", "mart") == []  # the join waits for the other branch
    assert [t.task_id for t in lake.projects.tasks("par")] == ["train"]

    # the metric deliverable reads the linked model version's run
    run = lake.create_run("par")
    lake.log_metric(run.run_id, "auc", 0.75)
    lake.log_model(run.run_id, lambda rows: rows, "model", flavor="python")
    lake.set_terminated(run.run_id, wait=True)
    lake.register_model("churn", run_id=run.run_id)
    with acting_as("sam"), pytest.raises(InvalidInputError, match=r"metric:auc >= 0.8: models:/churn/1 has auc = 0.75"):
        lake.projects.complete("par", "train")
    run2 = lake.create_run("par")
    lake.log_metric(run2.run_id, "auc", 0.9)
    lake.log_model(run2.run_id, lambda rows: rows, "model", flavor="python")
    lake.set_terminated(run2.run_id, wait=True)
    lake.register_model("churn", run_id=run2.run_id)
    with acting_as("sam"):
        ready = lake.projects.complete("par", "train")  # default: the latest version of the linked model
    assert [t.task_id for t in ready] == ["sign_off"]
    assert lake.projects.get("par").status == "validation"

    with acting_as("carol"):
        assert lake.projects.complete("par", "sign_off") == []
    assert lake.projects.get("par").status == "in_production"  # an end event without a status: done

    ev = {e["task_id"]: e for e in lake.projects.events("par") if e["event_type"] == "task_completed"}
    import json

    (mart,) = json.loads(ev["mart"]["deliverables"])
    assert (mart["kind"], mart["name"], mart["snapshot_id"]) == ("table", "sales.churn_mart", snap)
    assert mart["uri"].endswith(".metadata.json")
    (metric,) = json.loads(ev["train"]["deliverables"])
    assert (metric["value"], metric["uri"]) == (0.9, "models:/churn/2")


def test_approval_by_another_user_of_the_role(file_lake, tmp_path):
    """approval:<role> is met when a holder of the role approved, even if someone else completes."""
    lake = file_lake
    f = tmp_path / "approve.bpmn"
    f.write_bytes(bpmn(task('<spiffworkflow:property name="deliverable" value="approval:validator"/>')))
    with acting_as("ann"):
        lake.projects.create("appr", process=f, roles={"analyst": "ann"})
    with acting_as("ann"), pytest.raises(InvalidInputError, match="no approval by a 'validator'"):
        lake.projects.complete("appr", "t1")
    with acting_as("vic"), pytest.raises(Exception, match="holds none of the roles"):
        lake.projects.approve("appr", "t1")
    with acting_as("vic"):  # a token carrying the validator role (roles=), as on a server
        t = lake.projects.approve("appr", "t1", roles=["validator"], comment="ok")
    assert t.approvals == {"validator": "vic"}
    with acting_as("ann"):
        lake.projects.complete("appr", "t1")
    ev = [e for e in lake.projects.events("appr") if e["event_type"] in ("approval_given", "task_completed")]
    assert [(e["event_type"], e["actor"], e["role"]) for e in ev] == [("approval_given", "vic", "validator"),
                                                                      ("task_completed", "ann", "analyst")]
    with pytest.raises(InvalidInputError, match="not a lane"):
        lake.projects.assign("appr", "validator", "vic")


DECIDE = (HEAD + '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="reviewer"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>'
          '<bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>gw</bpmn:flowNodeRef>'
          '<bpmn:flowNodeRef>ok</bpmn:flowNodeRef><bpmn:flowNodeRef>stop</bpmn:flowNodeRef>'
          '<bpmn:flowNodeRef>note</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'
          '<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="a" sourceRef="s" targetRef="note"/>'
          '<bpmn:userTask id="note" name="Note"/><bpmn:sequenceFlow id="a2" sourceRef="note" targetRef="review"/>'
          '<bpmn:userTask id="review" name="Review"/><bpmn:sequenceFlow id="b" sourceRef="review" targetRef="gw"/>'
          '<bpmn:exclusiveGateway id="gw" default="c"/><bpmn:sequenceFlow id="c" sourceRef="gw" targetRef="ok"/>'
          '<bpmn:sequenceFlow id="f_stop" sourceRef="gw" targetRef="stop">'
          '<bpmn:conditionExpression>decision == "cancel"</bpmn:conditionExpression></bpmn:sequenceFlow>'
          '<bpmn:endEvent id="ok"/><bpmn:endEvent id="stop"><bpmn:extensionElements><spiffworkflow:properties>'
          '<spiffworkflow:property name="status" value="cancelled"/></spiffworkflow:properties>'
          '</bpmn:extensionElements></bpmn:endEvent>' + TAIL).encode()


def test_cancel_decision_through_a_gateway(file_lake, tmp_path):
    """decision 'cancel' takes the gateway's cancel flow to an end event whose status is cancelled; a
    decision on a task that no gateway follows is refused rather than ignored."""
    f = tmp_path / "decide.bpmn"
    f.write_bytes(DECIDE)
    lake = file_lake
    with acting_as("rex"):
        lake.projects.create("dec", process=f, roles={"reviewer": "rex"})
        with pytest.raises(InvalidInputError, match="no gateway that reads a decision"):
            lake.projects.complete("dec", "note", decision="cancel")
        lake.projects.complete("dec", "note")
        assert lake.projects.complete("dec", "review", decision="cancel", comment="not worth it") == []
    p = lake.projects.get("dec")
    assert p.status == "cancelled"
    last = lake.projects.events("dec")[-1]
    assert (last["event_type"], last["decision"], last["status_before"], last["status_after"]) == \
        ("task_completed", "cancel", "proposed", "cancelled")
