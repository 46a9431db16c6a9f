-- Clears pg_stat_statements before a workload, for --profile.
SELECT pg_stat_statements_reset()
