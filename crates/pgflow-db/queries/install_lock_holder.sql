-- The session holding the install lock (a session-level advisory lock on one bigint key,
-- which pg_locks shows as classid = high 32 bits, objid = low 32 bits, objsubid = 1).
SELECT l.pid, coalesce(a.usename::text, 'unknown'), coalesce(a.application_name, '')
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  AND l.classid::bigint = ($1::bigint >> 32)
  AND l.objid::bigint = ($1::bigint & 4294967295)
LIMIT 1
