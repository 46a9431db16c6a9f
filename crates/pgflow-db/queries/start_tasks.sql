-- Claims queued tasks for the read messages; returns their inputs (SPEC §3.4).
SELECT flow_slug, run_id, step_slug, coalesce(input, 'null'::jsonb) AS input, msg_id, task_index, flow_input
FROM pgflow.start_tasks(flow_slug => $1, msg_ids => $2, worker_id => $3)
