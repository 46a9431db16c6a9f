-- Table pgflow.step_states: one row per (run, step), all created by start_flow.
-- Invariants (see SPEC §1.2): remaining_deps counts unresolved parents; initial_tasks is the
-- planned task count (NULL for a dependent map until its parent completes); remaining_tasks
-- is NULL until the step starts and then counts tasks not yet completed. Output only on
-- completed steps; skip_reason exactly on skipped ones; at most one end time.
create table pgflow.step_states (
  flow_slug       text not null references pgflow.flows (flow_slug),
  run_id          uuid not null references pgflow.runs (run_id),
  step_slug       text not null,
  status          text not null default 'created',
  remaining_tasks int,
  initial_tasks   int check (initial_tasks is null or initial_tasks >= 0),
  remaining_deps  int not null default 0 check (remaining_deps >= 0),
  output          jsonb,
  error_message   text,
  skip_reason     text,
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  completed_at    timestamptz,
  failed_at       timestamptz,
  skipped_at      timestamptz,
  cancelled_at    timestamptz,
  primary key (run_id, step_slug),
  foreign key (flow_slug, step_slug) references pgflow.steps (flow_slug, step_slug),
  constraint status_is_valid check (
    status in ('created', 'started', 'completed', 'failed', 'skipped', 'cancelled')
  ),
  constraint status_and_remaining_tasks_match check (status <> 'completed' or remaining_tasks = 0),
  constraint remaining_tasks_state_consistency check (
    remaining_tasks is null or status not in ('created', 'skipped')
  ),
  constraint initial_tasks_known_when_started check (status <> 'started' or initial_tasks is not null),
  constraint output_only_for_completed_or_null check (output is null or status = 'completed'),
  constraint skip_reason_matches_status check ((status = 'skipped') = (skip_reason is not null)),
  constraint skip_reason_is_valid check (
    skip_reason is null or skip_reason in ('condition_unmet', 'handler_failed', 'dependency_skipped')
  ),
  constraint completed_at_or_failed_at_or_skipped_at check (
    (completed_at is not null)::int + (failed_at is not null)::int + (skipped_at is not null)::int <= 1
  ),
  constraint started_at_is_after_created_at check (started_at is null or started_at >= created_at),
  constraint completed_at_is_after_started_at check (completed_at is null or completed_at >= started_at),
  constraint failed_at_is_after_started_at check (failed_at is null or failed_at >= started_at),
  constraint skipped_at_is_after_created_at check (skipped_at is null or skipped_at >= created_at)
);

create index idx_step_states_ready on pgflow.step_states (run_id, status, remaining_deps)
  where status = 'created' and remaining_deps = 0;
create index idx_step_states_failed on pgflow.step_states (run_id, step_slug) where status = 'failed';
create index idx_step_states_skipped on pgflow.step_states (run_id, step_slug) where status = 'skipped';
create index idx_step_states_flow_slug on pgflow.step_states (flow_slug);
