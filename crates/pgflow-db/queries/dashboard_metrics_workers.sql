-- /metrics: per queue, workers not stopped whose last heartbeat is under $1 seconds old.
SELECT w.queue_name, count(*)::bigint AS alive
FROM pgflow.workers w
WHERE w.stopped_at IS NULL
  AND now() - w.last_heartbeat_at <= make_interval(secs => $1)
GROUP BY w.queue_name
ORDER BY w.queue_name
