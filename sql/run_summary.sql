-- One row per run: its current state, params as a map, and per metric the latest
-- value (metrics), the min (metrics_min) and the max (metrics_max), plus tags.
-- e.g. SELECT run_name, params['max_depth'], metrics['auc'] FROM lakeml.run_summary
CREATE OR REPLACE VIEW lakeml.run_summary AS
WITH p AS (
  SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS params
  FROM lakeml.params_latest GROUP BY run_id
), m AS (
  SELECT run_id,
         map(list(key ORDER BY key), list(value ORDER BY key)) AS metrics,
         map(list(key ORDER BY key), list(min_value ORDER BY key)) AS metrics_min,
         map(list(key ORDER BY key), list(max_value ORDER BY key)) AS metrics_max
  FROM lakeml.metric_latest GROUP BY run_id
), t AS (
  SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS tags
  FROM lakeml.tags_latest GROUP BY run_id
)
SELECT r.run_id, r.experiment_id, coalesce(e.name, r.experiment_name) AS experiment, r.run_name, r.status,
       r.start_time, r.end_time, r.duration_s, r.parent_run_id, r.user, r.source, r.git_commit,
       coalesce(p.params, MAP {}) AS params,
       coalesce(m.metrics, MAP {}) AS metrics,
       coalesce(m.metrics_min, MAP {}) AS metrics_min,
       coalesce(m.metrics_max, MAP {}) AS metrics_max,
       coalesce(t.tags, MAP {}) AS tags
FROM lakeml.runs_latest r
LEFT JOIN lakeml.experiments_latest e USING (experiment_id)
LEFT JOIN p USING (run_id)
LEFT JOIN m USING (run_id)
LEFT JOIN t USING (run_id);
