-- One page of a run's tasks for the dashboard, keyset-paginated on the primary key
-- (run_id, step_slug, task_index), so a 10,000-task map costs one page, never all of it.
-- $1 run id, $2 step slug or NULL, $3 status or NULL, $4/$5 the (step_slug, task_index) of
-- the previous page's last row (NULL for the first page), $6 page size, $7 preview length
-- (characters of output and error text returned; the full lengths come along).
SELECT t.step_slug,
       t.task_index,
       t.status,
       t.attempts_count,
       t.last_worker_id,
       t.queued_at,
       t.started_at,
       coalesce(t.completed_at, t.failed_at) AS finished_at,
       CASE WHEN t.started_at IS NULL THEN NULL
            ELSE extract(epoch FROM coalesce(t.completed_at, t.failed_at, now())
                                    - t.started_at)::float8 END AS duration_secs,
       left(t.error_message, $7) AS error_preview,
       octet_length(t.error_message) AS error_len,
       left(t.output::text, $7) AS output_preview,
       octet_length(t.output::text) AS output_len
FROM pgflow.step_tasks t
WHERE t.run_id = $1
  AND ($2::text IS NULL OR t.step_slug = $2)
  AND ($3::text IS NULL OR t.status = $3)
  AND ($4::text IS NULL OR (t.step_slug, t.task_index) > ($4::text, $5::int))
ORDER BY t.step_slug, t.task_index
LIMIT $6
