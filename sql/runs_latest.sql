-- One row per run with its current state: the latest event of lakeml.runs
-- (by event_time, then event_seq), plus its duration in seconds.
CREATE OR REPLACE VIEW lakeml.runs_latest AS
SELECT * EXCLUDE (rn),
       epoch(end_time) - epoch(start_time) AS duration_s
FROM (
  SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY event_time DESC, event_seq DESC) AS rn
  FROM lakeml.runs
)
WHERE rn = 1;
