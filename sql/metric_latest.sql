-- One row per (run_id, key) of lakeml.metrics: the latest point (highest step, then
-- timestamp, then value, as MLflow picks it) and the min, max and number of points.
-- A live lakeml client serves the same rows from a summary it keeps up to date
-- incrementally (lakeml/query/cache.py); this definition is what BI exports and
-- time-travel queries use.
CREATE OR REPLACE VIEW lakeml.metric_latest AS
SELECT run_id, key,
       arg_max(value, struct_pack(step, timestamp, value))::DOUBLE AS value,
       max(step)::BIGINT AS step,
       arg_max(timestamp, struct_pack(step, timestamp, value)) AS timestamp,
       min(value)::DOUBLE AS min_value,
       max(value)::DOUBLE AS max_value,
       count(*)::BIGINT AS count
FROM lakeml.metrics
GROUP BY run_id, key;
