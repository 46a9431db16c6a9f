-- Workers for the dashboard, classified: `stopped` (stopped cleanly), `stale` (no heartbeat
-- for $1 seconds), `deprecated`, else `alive`; with heartbeat age and tasks in flight.
-- Newest first, at most $2 rows.
SELECT w.worker_id,
       w.queue_name,
       w.function_name,
       CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped'
            WHEN now() - w.last_heartbeat_at > make_interval(secs => $1) THEN 'stale'
            WHEN w.deprecated_at IS NOT NULL THEN 'deprecated'
            ELSE 'alive' END AS state,
       w.started_at,
       w.last_heartbeat_at,
       w.stopped_at,
       extract(epoch FROM now() - w.last_heartbeat_at)::float8 AS heartbeat_age_secs,
       (SELECT count(*) FROM pgflow.step_tasks t
         WHERE t.last_worker_id = w.worker_id AND t.status = 'started')::int AS tasks_in_flight
FROM pgflow.workers w
ORDER BY w.started_at DESC, w.worker_id
LIMIT $2
