-- The window being checked: its predictions, their features in long form, and the labeled rows.
-- Parameters: $start, $end (timestamps, [start, end)), $numeric, $categorical (lists of feature names).
CREATE OR REPLACE TEMP TABLE current_rows AS
SELECT * FROM predictions WHERE ts >= $start AND ts < $end;

-- A row's features are typed (feature_values, in feature_names order) or a JSON object (features).
CREATE OR REPLACE TEMP TABLE current_feat AS
SELECT features, feature_values, from_json(feature_names, '["VARCHAR"]') AS names
FROM current_rows WHERE row_index >= 0;

CREATE OR REPLACE TEMP TABLE current_num AS
SELECT f.feature,
       coalesce(r.feature_values[list_position(r.names, f.feature)],
                TRY_CAST(json_extract_string(r.features, '/' || replace(replace(f.feature, '~', '~0'), '/', '~1')) AS DOUBLE)) AS x
FROM current_feat AS r, (SELECT unnest($numeric::VARCHAR[]) AS feature) AS f
UNION ALL
SELECT '__prediction__', prediction FROM current_rows WHERE row_index >= 0;

CREATE OR REPLACE TEMP TABLE current_cat AS
SELECT f.feature,
       coalesce(CAST(r.feature_values[list_position(r.names, f.feature)] AS VARCHAR),
                json_extract_string(r.features, '/' || replace(replace(f.feature, '~', '~0'), '/', '~1'))) AS c
FROM current_feat AS r, (SELECT unnest($categorical::VARCHAR[]) AS feature) AS f
UNION ALL
SELECT '__prediction__', CAST(prediction AS VARCHAR) FROM current_rows WHERE row_index >= 0;

-- A label given without row_index applies to every row of its request; the latest label wins.
CREATE OR REPLACE TEMP TABLE scored AS
SELECT prediction, label FROM (
    SELECT r.prediction, f.label,
           row_number() OVER (PARTITION BY r.request_id, r.row_index
                              ORDER BY f.logged_at DESC, f.row_index IS NULL) AS rk
    FROM current_rows AS r
    JOIN feedback AS f ON f.request_id = r.request_id AND (f.row_index IS NULL OR f.row_index = r.row_index)
    WHERE r.row_index >= 0 AND r.prediction IS NOT NULL AND f.label IS NOT NULL
) WHERE rk = 1;
