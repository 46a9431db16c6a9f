-- One task with its full output and error, for the dashboard's "show all" link.
-- $1 run id, $2 step slug, $3 task index.
SELECT t.step_slug,
       t.task_index,
       t.status,
       t.attempts_count,
       t.output,
       t.error_message
FROM pgflow.step_tasks t
WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3
