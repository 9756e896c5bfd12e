"""docs/lifecycle.md: a model project through the default BPMN process, the gate, the board."""

import lakeml
from lakeml.identity import acting_as  # stands in for five people here; the CLI uses the OS user

lake = lakeml.connect()
run = lake.create_run("churn")
lake.log_metric(run.run_id, "auc", 0.86)
lake.log_model(run.run_id, lambda rows: [0 for _ in rows], "model", flavor="python")
lake.set_terminated(run.run_id, wait=True)
lake.register_model("churn", run_id=run.run_id)

# --8<-- [start:create]
from lakeml.errors import InvalidInputError

roles = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam",
         "validator": "vera", "mlops_engineer": "max"}
with acting_as("carol"):
    lake.projects.create("churn", problem="Customers leave after a year", customer="retail",
                         roles=roles, experiments=["churn"], models=["churn"], target_date="2027-06-30")
    try:
        lake.projects.complete("churn", "problem_statement")    # nothing handed in
    except InvalidInputError as e:
        print(str(e).splitlines()[1].strip())                   # - doc:problem_statement: no document given ...
    lake.projects.complete("churn", "problem_statement",
                           deliverables={"doc:problem_statement": "Churn costs 5% of revenue a year."})
with acting_as("dan"):
    lake.projects.complete("churn", "data_mart", deliverables={
        "link:mart_code": "https://git.example.com/marts/churn", "link:mart": "sales.churn_mart",
        "doc:mart": "docs/mart.md is a path or the text itself"})
with acting_as("sam"):
    lake.projects.complete("churn", "experiments", model="churn/1")   # + artifact:model of its run
# --8<-- [end:create]

# --8<-- [start:gate]
from lakeml.errors import GateError

lake.set_gates("churn", lifecycle_steps=["approval"], aliases=["production"])
try:
    lake.set_alias("churn", "production", 1)
except GateError as e:
    print("refused:", e.failures[0].split(" (")[0])
with acting_as("vera"):
    lake.projects.complete("churn", "validation", deliverables={"doc:validation_report": "AUC 0.86"})
with acting_as("carol"):
    lake.projects.complete("churn", "approval", comment="go")       # approval:customer
print("production:", lake.set_alias("churn", "production", 1).version)
# --8<-- [end:gate]

# --8<-- [start:board]
lake.flush()
print(lake.sql("SELECT project, status, current_step, assignee FROM lakeml.project_board").rows())
# --8<-- [end:board]
lake.close()
