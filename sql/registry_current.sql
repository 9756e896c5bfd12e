-- Each registered model with its aliases, its latest version and where it runs now.
-- One row per model; no joins needed.
CREATE OR REPLACE VIEW lakeml.registry_current AS
WITH m AS (
    SELECT * FROM lakeml.registered_models_latest
), v AS (
    SELECT * FROM lakeml.model_versions_latest
), latest AS (
    SELECT model_name, max(version) AS latest_version, count(*) AS version_count FROM v GROUP BY model_name
), a AS (
    SELECT model_name, alias, version FROM lakeml.model_aliases_latest
), al AS (
    SELECT model_name,
           map(list(alias ORDER BY alias), list(version ORDER BY alias)) AS aliases,
           string_agg(alias || '=' || version, ', ' ORDER BY alias) AS aliases_text
    FROM a GROUP BY model_name
), d AS (
    SELECT * FROM lakeml.deployments_latest WHERE retired_at IS NULL
), dep AS (
    SELECT model_name,
           string_agg(environment || '/' || service || ': v' || version, ', '
                      ORDER BY environment, service) AS deployed_now,
           list(DISTINCT environment ORDER BY environment) AS environments
    FROM d GROUP BY model_name
)
SELECT m.name AS model_name,
       m.description,
       l.latest_version,
       'models:/' || m.name || '/' || l.latest_version AS latest_model_uri,
       lv.created_at AS latest_version_created_at,
       lv.run_id AS latest_version_run_id,
       lv.flavor AS latest_version_flavor,
       coalesce(l.version_count, 0) AS version_count,
       al.aliases,
       al.aliases_text,
       dep.deployed_now,
       dep.environments,
       m.tags,
       m.gates IS NOT NULL AS has_gates,
       m.gates,
       m.created_at,
       m.created_by,
       m.updated_at,
       m.updated_by
FROM m
LEFT JOIN latest l ON l.model_name = m.name
LEFT JOIN v lv ON lv.model_name = m.name AND lv.version = l.latest_version
LEFT JOIN al ON al.model_name = m.name
LEFT JOIN dep ON dep.model_name = m.name;
