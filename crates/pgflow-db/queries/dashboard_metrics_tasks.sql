-- /metrics: per flow and step, from the task rows pgflow.step_tasks holds now: attempts
-- started (every claim of a task counts one), tasks completed, and tasks failed for good
-- (out of attempts). One scan of step_tasks per scrape.
SELECT t.flow_slug,
       t.step_slug,
       coalesce(sum(t.attempts_count), 0)::bigint AS started,
       count(*) FILTER (WHERE t.status = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE t.status = 'failed')::bigint AS failed
FROM pgflow.step_tasks t
GROUP BY t.flow_slug, t.step_slug
ORDER BY t.flow_slug, t.step_slug
