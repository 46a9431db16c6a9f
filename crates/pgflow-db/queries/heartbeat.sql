-- Heartbeat; returns whether an operator deprecated this worker (SPEC §5).
UPDATE pgflow.workers
SET last_heartbeat_at = clock_timestamp()
WHERE worker_id = $1
RETURNING deprecated_at IS NOT NULL AS deprecated
