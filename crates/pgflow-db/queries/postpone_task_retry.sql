-- Keeps a requeued task's message hidden for $4 seconds from now (a retry postponed as a
-- server's Retry-After asked); false when nothing was postponed.
SELECT pgflow.postpone_task_retry(run_id => $1, step_slug => $2, task_index => $3, delay_seconds => $4) AS postponed
