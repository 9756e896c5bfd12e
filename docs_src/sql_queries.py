"""README.md and docs/sql.md: SQL over the lake with DuckDB, views, examples and time travel."""

import lakeml

lake = lakeml.connect()
for depth, auc in [(2, 0.81), (4, 0.88), (6, 0.86), (4, 0.84)]:
    run = lake.create_run("churn", run_name=f"depth{depth}")
    lake.log_params(run.run_id, {"max_depth": depth})
    lake.log_metric(run.run_id, "auc", auc)
    lake.set_terminated(run.run_id)

# --8<-- [start:readme]
lake.sql("""
  SELECT p.value AS max_depth, max(m.value) AS best_auc
  FROM lakeml.metrics m JOIN lakeml.params p USING (run_id)
  WHERE m.key = 'auc' AND p.key = 'max_depth'
  GROUP BY 1 ORDER BY 2 DESC""")
lake.sql("SELECT * FROM lakeml.runs_latest", as_of="2026-11-01T00:00:00Z")   # metadata time travel
# --8<-- [end:readme]
lake.close()

# --8<-- [start:basics]
import lakeml

lake = lakeml.connect()
lake.sql("""
  SELECT p.value AS max_depth, max(m.value) AS best_auc
  FROM lakeml.metrics m JOIN lakeml.params p USING (run_id)
  WHERE m.key = 'auc' AND p.key = 'max_depth'
  GROUP BY 1 ORDER BY 2 DESC""")                      # a polars DataFrame
lake.sql_arrow("SELECT * FROM lakeml.runs_latest")     # the same as a pyarrow Table
lake.sql("SELECT * FROM lakeml.leaderboard WHERE experiment = $e", params={"e": "churn"})
lake.sql("SELECT * FROM lakeml.runs", as_of="2026-11-01T00:00:00Z")   # time travel
# --8<-- [end:basics]

best = lake.sql("""
  SELECT p.value AS max_depth, max(m.value) AS best_auc
  FROM lakeml.metrics m JOIN lakeml.params p USING (run_id)
  WHERE m.key = 'auc' AND p.key = 'max_depth'
  GROUP BY 1 ORDER BY 2 DESC""")
print("best auc by max_depth:", best.rows())
print("runs on the leaderboard:", lake.sql("SELECT * FROM lakeml.leaderboard WHERE experiment = $e",
                                           params={"e": "churn"}).height)
print("runs on 2026-11-01:", lake.sql("SELECT * FROM lakeml.runs", as_of="2026-11-01T00:00:00Z").height)

# --8<-- [start:examples]
from lakeml.query.views import sql_dir
lake.sql((sql_dir() / "examples" / "param_sensitivity.sql").read_text(), params={"metric": "auc"})
# --8<-- [end:examples]
print("param_sensitivity columns:",
      lake.sql((sql_dir() / "examples" / "param_sensitivity.sql").read_text(), params={"metric": "auc"}).columns)

# --8<-- [start:as_of]
lake.sql("SELECT * FROM lakeml.leaderboard WHERE metric = 'auc' ORDER BY rank_desc LIMIT 10",
         as_of="2026-11-16T00:00:00Z")
# --8<-- [end:as_of]
lake.close()
