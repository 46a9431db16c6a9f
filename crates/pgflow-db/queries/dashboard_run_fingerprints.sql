-- For the dashboard's progress ticker: per run among $1 that is still started, a text that
-- changes whenever one of its steps changes status or completes a task (map progress emits
-- no event of its own). Reads only the runs' few step_states rows.
SELECT ss.run_id,
       string_agg(ss.status || ':' || coalesce(ss.remaining_tasks::text, '-'), ','
                  ORDER BY ss.step_slug) AS fingerprint
FROM pgflow.step_states ss
JOIN pgflow.runs r ON r.run_id = ss.run_id AND r.status = 'started'
WHERE ss.run_id = ANY($1)
GROUP BY ss.run_id
