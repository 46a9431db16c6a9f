-- Table pgflow.runs: one execution of a flow on one JSON input.
-- Invariants: status is started, completed, failed or cancelled (cancelled is a pgflow-rs
-- extension); the last three are terminal and exclusive; remaining_steps counts the steps
-- not yet completed or skipped and never goes below zero; the run completes at zero.
create table pgflow.runs (
  run_id          uuid primary key not null default gen_random_uuid(),
  flow_slug       text not null references pgflow.flows (flow_slug),
  status          text not null default 'started',
  input           jsonb not null,
  output          jsonb,
  remaining_steps int not null default 0 check (remaining_steps >= 0),
  started_at      timestamptz not null default now(),
  completed_at    timestamptz,
  failed_at       timestamptz,
  cancelled_at    timestamptz,
  constraint status_is_valid check (status in ('started', 'failed', 'completed', 'cancelled')),
  constraint completed_at_or_failed_at check (not (completed_at is not null and failed_at is not null)),
  constraint completed_at_is_after_started_at check (completed_at is null or completed_at >= started_at),
  constraint failed_at_is_after_started_at check (failed_at is null or failed_at >= started_at),
  constraint cancelled_at_matches_status check ((status = 'cancelled') = (cancelled_at is not null))
);

create index idx_runs_flow_slug on pgflow.runs (flow_slug);
create index idx_runs_status on pgflow.runs (status);
