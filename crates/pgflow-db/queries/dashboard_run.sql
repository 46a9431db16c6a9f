-- One run for the dashboard's run page: status, timestamps, previews of input and output
-- (the first $2 characters of their JSON text, with the full length), and progress computed
-- from the run's step_states alone (O(steps), whatever the number of tasks): a step counts 1
-- when completed or skipped, and done/planned tasks while it runs. $1 run id.
SELECT r.run_id,
       r.flow_slug,
       r.status,
       r.started_at,
       coalesce(r.completed_at, r.failed_at, r.cancelled_at) AS finished_at,
       extract(epoch FROM coalesce(r.completed_at, r.failed_at, r.cancelled_at, now())
                          - r.started_at)::float8 AS duration_secs,
       left(r.input::text, $2) AS input_preview,
       octet_length(r.input::text) AS input_len,
       left(r.output::text, $2) AS output_preview,
       octet_length(r.output::text) AS output_len,
       p.steps_done,
       p.steps_total,
       p.tasks_done,
       p.tasks_planned,
       CASE WHEN p.steps_total = 0 OR r.status = 'completed' THEN 100.0::float8
            ELSE round((100.0 * p.weighted / p.steps_total)::numeric, 1)::float8 END AS percent
FROM pgflow.runs r
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE ss.status IN ('completed', 'skipped'))::int AS steps_done,
         count(*)::int AS steps_total,
         coalesce(sum(CASE WHEN ss.status = 'completed' THEN coalesce(ss.initial_tasks, 0)
                           WHEN ss.remaining_tasks IS NOT NULL
                             THEN greatest(coalesce(ss.initial_tasks, 0) - ss.remaining_tasks, 0)
                           ELSE 0 END), 0)::bigint AS tasks_done,
         coalesce(sum(ss.initial_tasks), 0)::bigint AS tasks_planned,
         coalesce(sum(CASE WHEN ss.status IN ('completed', 'skipped') THEN 1.0
                           WHEN ss.status = 'started' AND coalesce(ss.initial_tasks, 0) > 0
                                AND ss.remaining_tasks IS NOT NULL
                             THEN (ss.initial_tasks - ss.remaining_tasks)::numeric / ss.initial_tasks
                           ELSE 0 END), 0) AS weighted
    FROM pgflow.step_states ss
   WHERE ss.run_id = r.run_id
) p
WHERE r.run_id = $1
