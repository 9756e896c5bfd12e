"""docs/health.md: maintenance from Python."""

import lakeml

lake = lakeml.connect()
for i in range(3):  # three flushes: three small files in each table
    run = lake.create_run("churn")
    lake.log_metric(run.run_id, "loss", 1.0 / (i + 1))
    lake.set_terminated(run.run_id)

# --8<-- [start:maintain]
report = lake.maintain()                       # every lakeml table that exists
report = lake.maintain("metrics", retain="2d", dry_run=True)
for t in report.tables:
    print(t.table, t.files_before, "->", t.files_after, t.bytes_freed, f"{t.seconds:.1f}s")
# --8<-- [end:maintain]
lake.close()

# A reader that does not use lakeml waits for exited processes' spools to be committed first:
# --8<-- [start:wait]
from lakeml.storage.drain import wait_for_drains
from lakeml.storage.localdirs import spool_root

wait_for_drains(spool_root(lake.config), timeout=120)  # or the path: <warehouse>/.lakeml-spool/<namespace>
# --8<-- [end:wait]
print("drained:", wait_for_drains(spool_root(lake.config), timeout=120))
