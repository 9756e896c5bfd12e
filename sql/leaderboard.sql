-- Runs ranked per experiment and metric by their latest value. rank_desc = 1 is the
-- highest value (accuracy, AUC), rank_asc = 1 the lowest (loss, error). Runs that
-- FAILED or were KILLED are left out.
-- e.g. SELECT * FROM lakeml.leaderboard WHERE experiment = 'churn' AND metric = 'auc'
--      ORDER BY rank_desc LIMIT 10
CREATE OR REPLACE VIEW lakeml.leaderboard AS
SELECT coalesce(e.name, r.experiment_name) AS experiment,
       m.key AS metric,
       rank() OVER (PARTITION BY r.experiment_id, m.key ORDER BY m.value DESC NULLS LAST) AS rank_desc,
       rank() OVER (PARTITION BY r.experiment_id, m.key ORDER BY m.value ASC NULLS LAST) AS rank_asc,
       m.value,
       m.min_value,
       m.max_value,
       m.step,
       r.run_id, r.run_name, r.status, r.start_time, r.end_time, r.experiment_id
FROM lakeml.metric_latest m
JOIN lakeml.runs_latest r USING (run_id)
LEFT JOIN lakeml.experiments_latest e USING (experiment_id)
WHERE r.status IN ('FINISHED', 'RUNNING');
