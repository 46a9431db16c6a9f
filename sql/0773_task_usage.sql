-- Table pgflow.task_usage (pgflow-rs extension): one row per metered call (an LLM request)
-- made by a task attempt, written by pgflow.record_task_usage. `attempt` is the task's
-- attempts_count when the call was recorded, so calls of an attempt that was abandoned (a
-- killed worker, a timeout) stay apart from those of the attempt that completed the task.
-- `cost_usd` is priced from pgflow.model_prices when recorded (NULL when the model had no
-- price then). Rows go away with their run.
create table pgflow.task_usage (
  usage_id      bigint generated always as identity primary key,
  run_id        uuid not null references pgflow.runs (run_id) on delete cascade,
  flow_slug     text not null,
  step_slug     text not null,
  task_index    int not null,
  attempt       int not null check (attempt >= 0),
  model         text not null,
  input_tokens  bigint check (input_tokens >= 0),
  output_tokens bigint check (output_tokens >= 0),
  cost_usd      numeric check (cost_usd >= 0),
  latency_ms    bigint not null check (latency_ms >= 0),
  recorded_at   timestamptz not null default now()
);

create index idx_task_usage_run on pgflow.task_usage (run_id, step_slug, task_index);
