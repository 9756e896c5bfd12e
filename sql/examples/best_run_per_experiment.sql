-- Best run per experiment by the latest value of one metric (higher is better).
-- Parameter: $metric, e.g. 'auc'.  lake.sql(text, params={"metric": "auc"})
SELECT experiment, run_name, run_id, value AS best_value, start_time
FROM lakeml.leaderboard
WHERE metric = $metric AND rank_desc = 1
ORDER BY experiment;
