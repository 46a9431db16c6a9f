-- Workers, newest first, with the seconds since their last heartbeat, for `pgflow workers`.
-- $1: include stopped workers.
SELECT w.worker_id,
       w.queue_name,
       w.function_name,
       w.started_at,
       w.last_heartbeat_at,
       w.stopped_at,
       w.deprecated_at,
       extract(epoch FROM now() - w.last_heartbeat_at)::float8 AS heartbeat_age_secs,
       (SELECT count(*) FROM pgflow.step_tasks t
         WHERE t.last_worker_id = w.worker_id AND t.status = 'started')::int AS active_tasks
FROM pgflow.workers w
WHERE $1 OR w.stopped_at IS NULL
ORDER BY w.started_at DESC, w.worker_id
