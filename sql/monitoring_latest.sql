-- Current monitoring results: for each model version, window size and window, the rows of its latest
-- computation (lakeml monitor run computes a window again when new labels arrived for it).
CREATE OR REPLACE VIEW lakeml.monitoring_latest AS
SELECT * EXCLUDE (computation_rank) FROM (
    SELECT *, dense_rank() OVER (PARTITION BY model_name, model_version, window_size, window_start
                                 ORDER BY computed_at DESC, computation_id DESC) AS computation_rank
    FROM lakeml.monitoring
) WHERE computation_rank = 1;
