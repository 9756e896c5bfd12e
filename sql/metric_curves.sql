-- Metric series downsampled to at most 500 buckets of consecutive steps per (run, metric),
-- so plotting a 1M-step series moves 500 rows. Each bucket keeps the mean, the min, the
-- max and the last value, so spikes stay visible. step is the bucket's first step.
-- Filter by run_id: the filter reaches the metrics scan, which then reads few files.
CREATE OR REPLACE VIEW lakeml.metric_curves AS
WITH w AS (
  SELECT run_id, key, greatest(1, ceil((step + 1) / 500.0))::BIGINT AS width
  FROM lakeml.metric_latest
)
SELECT m.run_id, m.key,
       (m.step // w.width) * w.width AS step,
       max(m.step) AS last_step,
       avg(m.value) AS value,
       min(m.value) AS value_min,
       max(m.value) AS value_max,
       arg_max(m.value, struct_pack(m.step, m.timestamp)) AS value_last,
       count(*) AS points
FROM lakeml.metrics m
JOIN w USING (run_id, key)
GROUP BY m.run_id, m.key, (m.step // w.width) * w.width;
