-- Per flow, its pgmq queue for the dashboard and /metrics: visible and total live messages,
-- the oldest live message's age, archived messages (pgflow.queue_archive_counts) and tasks
-- in flight. The queue columns are NULL when the flow's queue is missing.
SELECT f.flow_slug,
       m.queue_name IS NOT NULL AS has_queue,
       m.queue_visible_length AS visible,
       m.queue_length AS total,
       m.oldest_msg_age_sec AS oldest_age_secs,
       a.archived,
       (SELECT count(*) FROM pgflow.step_tasks t
         WHERE t.flow_slug = f.flow_slug AND t.status = 'started')::int AS tasks_in_flight
FROM pgflow.flows f
LEFT JOIN pgmq.metrics_all() m ON m.queue_name = f.flow_slug
LEFT JOIN pgflow.queue_archive_counts() a ON a.flow_slug = f.flow_slug
ORDER BY f.flow_slug
