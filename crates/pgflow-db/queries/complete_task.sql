-- Reports a task's output; idempotent, first report wins (SPEC §3.4).
SELECT run_id, step_slug, task_index, status, attempts_count, error_message
FROM pgflow.complete_task(run_id => $1, step_slug => $2, task_index => $3, output => $4)
