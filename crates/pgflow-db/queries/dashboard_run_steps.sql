-- Per step of a run, in definition order, for the dashboard's run page and DAG: the step's
-- definition (type, parents, conditions), its state, task counts from step_states (no scan of
-- a map's tasks), the most attempts any task used and the latest task error (each one index
-- range scan on the step's tasks), timings, and a preview of its output ($2 characters).
-- $1 run id.
SELECT s.step_slug,
       s.step_index,
       s.step_type,
       coalesce((SELECT array_agg(d.dep_slug ORDER BY d.dep_slug) FROM pgflow.deps d
                  WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug),
                '{}'::text[]) AS dependencies,
       s.required_input_pattern,
       s.forbidden_input_pattern,
       s.when_unmet,
       s.when_exhausted,
       ss.status,
       ss.initial_tasks,
       ss.remaining_tasks,
       CASE WHEN ss.status = 'completed' THEN coalesce(ss.initial_tasks, 0)
            WHEN ss.remaining_tasks IS NOT NULL
              THEN greatest(coalesce(ss.initial_tasks, 0) - ss.remaining_tasks, 0)
            ELSE 0 END AS tasks_done,
       coalesce((SELECT max(t.attempts_count) FROM pgflow.step_tasks t
                  WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug), 0) AS attempts,
       ss.created_at,
       ss.started_at,
       coalesce(ss.completed_at, ss.failed_at, ss.skipped_at, ss.cancelled_at) AS finished_at,
       CASE WHEN ss.started_at IS NULL THEN NULL
            ELSE extract(epoch FROM coalesce(ss.completed_at, ss.failed_at, ss.skipped_at,
                                             ss.cancelled_at, now()) - ss.started_at)::float8
       END AS duration_secs,
       coalesce(ss.error_message,
                (SELECT t.error_message FROM pgflow.step_tasks t
                  WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug
                    AND t.error_message IS NOT NULL
                  ORDER BY t.failed_at DESC NULLS LAST LIMIT 1)) AS error_message,
       ss.skip_reason,
       left(ss.output::text, $2) AS output_preview,
       octet_length(ss.output::text) AS output_len
FROM pgflow.step_states ss
JOIN pgflow.steps s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
WHERE ss.run_id = $1
ORDER BY s.step_index
