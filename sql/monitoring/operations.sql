-- Operations over the window's requests (one request = its rows in current_rows; a failed request
-- has one row with row_index -1 or an HTTP status >= 400). Parameter: $seconds, the window length.
-- labeled: rows that have a label (the runner recomputes a window when this grows).
WITH requests AS (
    SELECT request_id, max(latency_ms) AS latency_ms,
           bool_or(row_index < 0 OR coalesce(status, 200) >= 400) AS failed
    FROM current_rows GROUP BY request_id
)
SELECT 'requests' AS check_name, NULL AS feature, count(*)::DOUBLE AS value, count(*) AS n FROM requests
UNION ALL
SELECT 'request_rate', NULL, count(*) / $seconds::DOUBLE, count(*) FROM requests
UNION ALL
SELECT 'error_rate', NULL, avg(CASE WHEN failed THEN 1.0 ELSE 0.0 END), count(*) FROM requests HAVING count(*) > 0
UNION ALL
SELECT 'latency_p50', NULL, quantile_cont(latency_ms, 0.5), count(latency_ms) FROM requests HAVING count(latency_ms) > 0
UNION ALL
SELECT 'latency_p95', NULL, quantile_cont(latency_ms, 0.95), count(latency_ms) FROM requests HAVING count(latency_ms) > 0
UNION ALL
SELECT 'latency_p99', NULL, quantile_cont(latency_ms, 0.99), count(latency_ms) FROM requests HAVING count(latency_ms) > 0
UNION ALL
SELECT 'labeled', NULL, count(*)::DOUBLE, count(*) FROM scored;
