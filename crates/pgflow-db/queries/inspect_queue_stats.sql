-- Per flow: its pgmq queue's visible and total message counts and the oldest message's age,
-- for `pgflow queues`. The metrics columns are NULL when the flow's queue is missing.
SELECT f.flow_slug,
       m.queue_name IS NOT NULL AS has_queue,
       m.queue_visible_length AS visible,
       m.queue_length AS total,
       m.oldest_msg_age_sec AS oldest_age_secs,
       (SELECT count(*) FROM pgflow.step_tasks t
         WHERE t.flow_slug = f.flow_slug AND t.status = 'started')::int AS tasks_in_flight
FROM pgflow.flows f
LEFT JOIN pgmq.metrics_all() m ON m.queue_name = f.flow_slug
ORDER BY f.flow_slug
