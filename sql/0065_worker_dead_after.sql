-- pgflow.worker_dead_after (pgflow-rs extension): how long a worker may go without a
-- heartbeat before requeue_stalled_tasks presumes it dead, when the worker asked for longer
-- than pgflow.config.dead_worker_after (WorkerConfig::dead_worker_after in the Rust worker).
-- The database setting stays the floor: a worker can only lengthen its own grace, never
-- make the sweep stricter. One row per worker, removed with the worker row.
create table pgflow.worker_dead_after (
  worker_id  uuid primary key references pgflow.workers (worker_id) on delete cascade,
  dead_after interval not null
             constraint worker_dead_after_range
             check (dead_after >= interval '1 second' and dead_after <= interval '1 day')
);
