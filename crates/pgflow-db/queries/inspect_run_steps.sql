-- Per step of a run, in definition order: status, tasks done of planned, attempts used (the
-- most any task took), time taken (so far) and the error, for `pgflow run show/watch`.
SELECT ss.step_slug,
       s.step_index,
       s.step_type,
       ss.status,
       ss.initial_tasks,
       coalesce(t.tasks_done, 0) AS tasks_done,
       coalesce(t.tasks_created, 0) AS tasks_created,
       coalesce(t.max_attempts_used, 0) AS attempts,
       ss.started_at,
       coalesce(ss.completed_at, ss.failed_at, ss.skipped_at, ss.cancelled_at) AS finished_at,
       CASE WHEN ss.started_at IS NULL THEN NULL
            ELSE extract(epoch FROM coalesce(ss.completed_at, ss.failed_at, ss.skipped_at,
                                             ss.cancelled_at, now()) - ss.started_at)::float8
       END AS duration_secs,
       coalesce(ss.error_message, t.last_error) AS error_message,
       ss.skip_reason
FROM pgflow.step_states ss
JOIN pgflow.steps s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE st.status = 'completed')::int AS tasks_done,
         count(*)::int AS tasks_created,
         max(st.attempts_count)::int AS max_attempts_used,
         (array_agg(st.error_message ORDER BY st.failed_at DESC NULLS LAST)
            FILTER (WHERE st.error_message IS NOT NULL))[1] AS last_error
    FROM pgflow.step_tasks st
   WHERE st.run_id = ss.run_id AND st.step_slug = ss.step_slug
) t ON true
WHERE ss.run_id = $1
ORDER BY s.step_index
