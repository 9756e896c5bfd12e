-- Jensen-Shannon distance (base 2, in [0, 1]) per categorical feature between the training
-- category shares and the window's (scipy.spatial.distance.jensenshannon(p, q, base=2)).
WITH ref AS (
    SELECT feature, c, count(*) / sum(count(*)) OVER (PARTITION BY feature) AS p
    FROM reference_cat WHERE c IS NOT NULL GROUP BY feature, c
),
cur AS (
    SELECT feature, c, count(*) / sum(count(*)) OVER (PARTITION BY feature) AS q,
           sum(count(*)) OVER (PARTITION BY feature) AS n
    FROM current_cat WHERE c IS NOT NULL GROUP BY feature, c
),
both_sides AS (
    SELECT feature, c, coalesce(ref.p, 0) AS p, coalesce(cur.q, 0) AS q,
           max(cur.n) OVER (PARTITION BY feature) AS n
    FROM ref FULL OUTER JOIN cur USING (feature, c)
),
terms AS (
    SELECT feature, n,
           (CASE WHEN p > 0 THEN p * ln(p / ((p + q) / 2)) ELSE 0 END
            + CASE WHEN q > 0 THEN q * ln(q / ((p + q) / 2)) ELSE 0 END) / 2 AS t
    FROM both_sides
)
SELECT 'jsd' AS check_name, feature, sqrt(greatest(sum(t) / ln(2), 0)) AS value, any_value(n) AS n
FROM terms WHERE n > 0 GROUP BY feature
HAVING feature IN (SELECT feature FROM reference_cat) ORDER BY feature;
