-- One row per (run_id, key) of lakeml.metrics: the latest point (highest step, then
-- timestamp, then value, as MLflow picks it) and the min, max and number of points.
-- A live lakeml client serves the same rows from a summary it keeps up to date
-- incrementally (lakeml/query/cache.py); this definition is what BI exports and
-- time-travel queries use.
CREATE OR REPLACE VIEW lakeml.metric_latest AS
SELECT run_id, key,
       latest.value::DOUBLE AS value,
       latest.step::BIGINT AS step,
       latest.timestamp AS timestamp,
       min_value::DOUBLE AS min_value,
       max_value::DOUBLE AS max_value,
       count::BIGINT AS count
FROM (SELECT run_id, key,
             max(struct_pack(step, timestamp, value)) AS latest,  -- a struct compares field by field
             min(value) AS min_value, max(value) AS max_value, count(*) AS count
      FROM lakeml.metrics
      GROUP BY run_id, key);
