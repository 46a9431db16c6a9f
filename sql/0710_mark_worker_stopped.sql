-- replaceable
-- pgflow.mark_worker_stopped: records a worker's graceful stop (stopped_at). The sweeper
-- treats tasks still started by a stopped worker as stalled.
create or replace function pgflow.mark_worker_stopped(worker_id uuid)
returns void
language sql
set search_path = ''
as $$
  update pgflow.workers w set stopped_at = clock_timestamp() where w.worker_id = mark_worker_stopped.worker_id;
$$;
