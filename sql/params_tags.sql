-- Params are write-once: one row per (run_id, key).
CREATE OR REPLACE VIEW lakeml.params_latest AS
SELECT run_id, key, any_value(value) AS value, min(logged_at) AS logged_at
FROM lakeml.params
GROUP BY run_id, key;

-- Tags as they are now: the latest row per (run_id, key), deleted tags left out.
CREATE OR REPLACE VIEW lakeml.tags_latest AS
SELECT run_id, key, value, logged_at
FROM (
  SELECT *, row_number() OVER (PARTITION BY run_id, key ORDER BY logged_at DESC) AS rn
  FROM lakeml.tags
)
WHERE rn = 1 AND NOT deleted;
