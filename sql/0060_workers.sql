-- Table pgflow.workers: one row per worker process, inserted before it starts any task
-- (step_tasks.last_worker_id references it). Heartbeats update last_heartbeat_at;
-- a graceful stop sets stopped_at; operators set deprecated_at to ask workers to stop polling.
create table pgflow.workers (
  worker_id         uuid primary key not null,
  queue_name        text not null,
  function_name     text not null,
  started_at        timestamptz not null default now(),
  deprecated_at     timestamptz,
  stopped_at        timestamptz,
  last_heartbeat_at timestamptz not null default now()
);

create index idx_workers_queue_name on pgflow.workers (queue_name);
create index idx_workers_heartbeat on pgflow.workers (last_heartbeat_at);
