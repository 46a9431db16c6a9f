-- Top-level statements executed in this database so far, except the harness's own
-- pg_stat_statements / pg_stat_database reads.
SELECT coalesce(sum(s.calls), 0)::bigint AS calls
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query NOT LIKE '%pg_stat_statements%'
  AND s.query NOT LIKE '%pg_stat_database%'
