-- One row per experiment: its name, artifact location, first creation time and tags.
-- (lakeml.experiments may hold one row per client that first used the experiment.)
CREATE OR REPLACE VIEW lakeml.experiments_latest AS
SELECT experiment_id,
       any_value(name) AS name,
       any_value(artifact_location) AS artifact_location,
       min(created_at) AS created_at,
       any_value(tags) AS tags
FROM lakeml.experiments
GROUP BY experiment_id;
