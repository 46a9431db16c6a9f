-- The statements that took the most server time since the last reset (--profile).
SELECT s.calls, s.total_exec_time::float8 AS total_ms, s.mean_exec_time::float8 AS mean_ms,
       regexp_replace(left(s.query, 110), '\s+', ' ', 'g') AS query
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query NOT LIKE '%pg_stat_statements%'
ORDER BY s.total_exec_time DESC
LIMIT $1
