-- Deletes finished runs, stale workers and archived messages older than $1 seconds
-- (SPEC §3.8), and reports how many runs and workers that removes. The counts are taken
-- first in the same statement's snapshot, with the same cut-off rules as the function.
WITH cut AS (
  SELECT now() - make_interval(secs => $1) AS cutoff
), counts AS (
  SELECT (SELECT count(*) FROM pgflow.runs r, cut
           WHERE r.status IN ('completed', 'failed', 'cancelled')
             AND coalesce(r.completed_at, r.failed_at, r.cancelled_at) < cut.cutoff)::int AS runs,
         (SELECT count(*) FROM pgflow.workers w, cut
           WHERE w.last_heartbeat_at < cut.cutoff
             AND NOT EXISTS (SELECT 1 FROM pgflow.step_tasks t
                              WHERE t.last_worker_id = w.worker_id AND t.status = 'started'))::int AS workers
), pruned AS (
  SELECT pgflow.prune_data_older_than(make_interval(secs => $1)) AS done
)
SELECT counts.runs, counts.workers, cut.cutoff
FROM counts, cut, pruned
