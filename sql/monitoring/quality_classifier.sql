-- Quality of a classifier over the labeled rows of the window (table scored: prediction, label).
-- accuracy: share of rows predicted right. For two classes {0, 1} (1 = positive):
-- f1 = 2TP / (2TP + FP + FN), and auc = the Mann-Whitney rank statistic of the prediction as score
-- (ties get their average rank; sklearn.metrics.roc_auc_score), null when the window holds one class.
WITH n AS (SELECT count(*) AS n FROM scored),
two_classes AS (SELECT bool_and(label IN (0, 1) AND prediction IN (0, 1)) AS ok FROM scored),
ranked AS (
    SELECT label, rank() OVER (ORDER BY prediction) + (count(*) OVER (PARTITION BY prediction) - 1) / 2 AS r
    FROM scored
),
auc AS (
    SELECT (sum(r) FILTER (WHERE label = 1) - count(*) FILTER (WHERE label = 1) * (count(*) FILTER (WHERE label = 1) + 1) / 2)
           / nullif(count(*) FILTER (WHERE label = 1) * count(*) FILTER (WHERE label <> 1), 0) AS v
    FROM ranked
),
conf AS (
    SELECT count(*) FILTER (WHERE prediction = 1 AND label = 1) AS tp,
           count(*) FILTER (WHERE prediction = 1 AND label <> 1) AS fp,
           count(*) FILTER (WHERE prediction <> 1 AND label = 1) AS fn
    FROM scored
)
SELECT 'accuracy' AS check_name, NULL AS feature, avg(CASE WHEN prediction = label THEN 1.0 ELSE 0.0 END) AS value,
       count(*) AS n
FROM scored HAVING count(*) > 0
UNION ALL
SELECT 'f1', NULL, 2 * tp / nullif(2 * tp + fp + fn, 0), (SELECT n FROM n) FROM conf, two_classes
WHERE two_classes.ok AND (SELECT n FROM n) > 0
UNION ALL
SELECT 'auc', NULL, auc.v, (SELECT n FROM n) FROM auc, two_classes WHERE two_classes.ok AND (SELECT n FROM n) > 0;
