-- How many workers serve queue $1 now: not stopped, not told to stop, and with a heartbeat
-- in the last $2 seconds (workers beat every few seconds while they poll).
SELECT count(*)::int
FROM pgflow.workers w
WHERE w.queue_name = $1
  AND w.stopped_at IS NULL
  AND w.deprecated_at IS NULL
  AND w.last_heartbeat_at > now() - make_interval(secs => $2)
