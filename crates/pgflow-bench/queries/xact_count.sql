-- Committed + rolled-back transactions of this database so far (fallback query counter
-- when pg_stat_statements is not available; each autocommit statement is a transaction).
SELECT (xact_commit + xact_rollback)::bigint AS xacts
FROM pg_stat_database
WHERE datname = current_database()
