-- Table pgflow.step_tasks: one unit of work (one task per single step, one per element of a
-- map step), backed by one pgmq message (message_id).
-- Invariants: status queued -> started -> completed | failed (started -> queued on retry or
-- stall requeue; cancelled is a pgflow-rs extension); output only on completed/failed tasks;
-- attempts_count counts starts; a worker row must exist before start_tasks names it.
create table pgflow.step_tasks (
  flow_slug              text not null references pgflow.flows (flow_slug),
  run_id                 uuid not null references pgflow.runs (run_id),
  step_slug              text not null,
  message_id             bigint,
  task_index             int not null default 0,
  status                 text not null default 'queued',
  attempts_count         int not null default 0 check (attempts_count >= 0),
  error_message          text,
  output                 jsonb,
  queued_at              timestamptz not null default now(),
  started_at             timestamptz,
  completed_at           timestamptz,
  failed_at              timestamptz,
  last_worker_id         uuid references pgflow.workers (worker_id) on delete set null,
  requeued_count         int not null default 0,
  last_requeued_at       timestamptz,
  permanently_stalled_at timestamptz,
  -- pgflow-rs: the claim (pgflow.claim_tasks) that last started this task, so a worker whose
  -- claim reply was lost can ask for the same tasks again instead of stranding them.
  last_claim_id          uuid,
  primary key (run_id, step_slug, task_index),
  foreign key (run_id, step_slug) references pgflow.step_states (run_id, step_slug),
  constraint valid_status check (status in ('queued', 'started', 'completed', 'failed', 'cancelled')),
  constraint output_valid_only_for_completed check (output is null or status in ('completed', 'failed')),
  constraint completed_at_or_failed_at check (not (completed_at is not null and failed_at is not null)),
  constraint started_at_is_after_queued_at check (started_at is null or started_at >= queued_at),
  constraint completed_at_is_after_started_at check (
    completed_at is null or started_at is null or completed_at >= started_at
  ),
  constraint failed_at_is_after_started_at check (
    failed_at is null or started_at is null or failed_at >= started_at
  )
);

create index idx_step_tasks_message_id on pgflow.step_tasks (message_id);
create index idx_step_tasks_queued on pgflow.step_tasks (run_id, step_slug) where status = 'queued';
create index idx_step_tasks_started on pgflow.step_tasks (started_at) where status = 'started';
create index idx_step_tasks_completed on pgflow.step_tasks (run_id, step_slug) where status = 'completed';
create index idx_step_tasks_failed on pgflow.step_tasks (run_id, step_slug) where status = 'failed';
create index idx_step_tasks_last_worker on pgflow.step_tasks (last_worker_id) where status = 'started';
create index idx_step_tasks_flow_run_step on pgflow.step_tasks (flow_slug, run_id, step_slug);
create index idx_step_tasks_last_claim on pgflow.step_tasks (last_claim_id) where status = 'started';
