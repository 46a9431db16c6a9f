-- A task's attempt number (attempts_count), NULL when unknown.
SELECT pgflow.task_attempt(run_id => $1, step_slug => $2, task_index => $3) AS attempt
