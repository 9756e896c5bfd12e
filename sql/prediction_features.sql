-- The inputs of logged predictions in long form, one row per (request row, feature), whichever way the
-- service stored them: typed (feature_values in feature_names order, for a float matrix) or as a JSON
-- object (features). value is the number (NULL for text, NaN or infinities); text is the value as text.
CREATE OR REPLACE VIEW lakeml.prediction_features AS
SELECT request_id, row_index, ts, model_name, model_version, feature, value, CAST(value AS VARCHAR) AS text
FROM (
    SELECT request_id, row_index, ts, model_name, model_version,
           unnest(from_json(feature_names, '["VARCHAR"]')) AS feature, unnest(feature_values) AS value
    FROM lakeml.predictions WHERE feature_names IS NOT NULL AND row_index >= 0
)
UNION ALL
SELECT request_id, row_index, ts, model_name, model_version, k AS feature,
       TRY_CAST(json_extract_string(features, '/' || replace(replace(k, '~', '~0'), '/', '~1')) AS DOUBLE) AS value,
       json_extract_string(features, '/' || replace(replace(k, '~', '~0'), '/', '~1')) AS text
FROM (
    SELECT request_id, row_index, ts, model_name, model_version, features, unnest(json_keys(features)) AS k
    FROM lakeml.predictions
    WHERE features IS NOT NULL AND row_index >= 0 AND json_valid(features) AND json_type(features) = 'OBJECT'
);
