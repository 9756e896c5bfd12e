-- Quality of a regressor over the labeled rows of the window (table scored: prediction, label):
-- mean absolute error and root mean squared error.
SELECT 'mae' AS check_name, NULL AS feature, avg(abs(prediction - label)) AS value, count(*) AS n
FROM scored HAVING count(*) > 0
UNION ALL
SELECT 'rmse', NULL, sqrt(avg((prediction - label) * (prediction - label))), count(*)
FROM scored HAVING count(*) > 0;
