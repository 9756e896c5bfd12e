-- Two-sample Kolmogorov-Smirnov statistic per numeric feature: the largest distance between the
-- empirical CDFs of the training values and the window's values (scipy.stats.ks_2samp(...).statistic).
-- Both CDFs are steps, so the largest distance is at a window value c, or just below it: compare
-- F_cur(c) with F_ref(c), and F_cur(c-) (the previous window value's) with F_ref(c-) (training values < c).
-- reference_cdf (reference.sql) holds the training side: each distinct value and the share <= it.
WITH cur AS (
    SELECT feature, x, count(*) AS k FROM current_num
    WHERE x IS NOT NULL AND feature IN (SELECT feature FROM reference_cuts) GROUP BY feature, x
),
cur_cdf AS (
    SELECT feature, x,
           sum(k) OVER w / sum(k) OVER (PARTITION BY feature) AS f_le,
           (sum(k) OVER w - k) / sum(k) OVER (PARTITION BY feature) AS f_lt,
           sum(k) OVER (PARTITION BY feature) AS n
    FROM cur
    WINDOW w AS (PARTITION BY feature ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
at_c AS (
    SELECT c.*, coalesce(r.f, 0) AS r_le
    FROM cur_cdf AS c ASOF LEFT JOIN reference_cdf AS r ON c.feature = r.feature AND c.x >= r.x
),
below_c AS (
    SELECT a.*, coalesce(r.f, 0) AS r_lt
    FROM at_c AS a ASOF LEFT JOIN reference_cdf AS r ON a.feature = r.feature AND a.x > r.x
)
SELECT 'ks' AS check_name, feature, max(greatest(abs(r_le - f_le), abs(r_lt - f_lt))) AS value, any_value(n) AS n
FROM below_c GROUP BY feature ORDER BY feature;
