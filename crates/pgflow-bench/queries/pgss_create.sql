-- pg_stat_statements, when the server preloads it (the throwaway cluster does).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements
