-- Sets workers.stopped_at (SPEC §3.6).
SELECT FROM pgflow.mark_worker_stopped(worker_id => $1)
