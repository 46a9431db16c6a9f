-- Reports many task outputs in one call and one transaction (pgflow-rs extension):
-- each element of the JSON array gets complete_task's semantics, in a fixed lock order.
SELECT run_id, step_slug, task_index, status, attempts_count, error_message
FROM pgflow.complete_tasks(completions => $1)
