-- Claims queued tasks for the read messages (as start_tasks); returns their inputs, attempt
-- numbers and their steps' settings.
SELECT flow_slug, run_id, step_slug, coalesce(input, 'null'::jsonb) AS input, msg_id, task_index, flow_input,
       attempts_count, max_attempts, timeout AS timeout_secs, base_delay AS base_delay_secs,
       retry_delay AS retry_delay_secs
FROM pgflow.start_worker_tasks(flow_slug => $1, msg_ids => $2, worker_id => $3)
