-- Params with typed values beside the stored text (params are strings, as in MLflow), so that
-- numbers compare and sort as numbers (2 < 10, not '10' < '2'): value_num is the value as a
-- DOUBLE when it parses as a number (else NULL), value_bool when it is true/false (any case).
CREATE OR REPLACE VIEW lakeml.params_typed AS
SELECT run_id, key, value,
       TRY_CAST(value AS DOUBLE) AS value_num,
       CASE lower(value) WHEN 'true' THEN true WHEN 'false' THEN false END AS value_bool,
       logged_at
FROM lakeml.params_latest;
