-- Param sensitivity: for every param and value, how many finished runs used it and how
-- the final value of one metric varies across them; the params whose values move the
-- metric most come first. Parameter: $metric, e.g. 'auc'.
WITH runs AS (
  SELECT run_id, experiment, params, metrics[$metric] AS metric
  FROM lakeml.run_summary
  WHERE status = 'FINISHED' AND metrics[$metric] IS NOT NULL
), by_value AS (
  SELECT r.experiment, p.key AS param, p.value,
         count(*) AS runs, avg(r.metric) AS mean_metric, min(r.metric) AS min_metric, max(r.metric) AS max_metric
  FROM runs r
  JOIN lakeml.params_latest p USING (run_id)
  GROUP BY ALL
)
SELECT *, max(mean_metric) OVER w - min(mean_metric) OVER w AS param_effect
FROM by_value
WINDOW w AS (PARTITION BY experiment, param)
ORDER BY param_effect DESC, experiment, param, mean_metric DESC;
