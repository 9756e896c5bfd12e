-- Experiments over time: per experiment and day, how many runs started, how they ended,
-- and the total compute time of finished runs.
SELECT experiment,
       date_trunc('day', start_time) AS day,
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'FINISHED') AS finished,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'KILLED') AS killed,
       count(*) FILTER (WHERE status = 'RUNNING') AS running,
       round(sum(duration_s) FILTER (WHERE status = 'FINISHED') / 3600.0, 3) AS finished_hours
FROM lakeml.run_summary
GROUP BY ALL
ORDER BY day, experiment;
