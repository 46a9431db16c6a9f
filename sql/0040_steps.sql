-- Table pgflow.steps: the nodes of a flow's DAG.
-- Invariants: step_index is the insertion order, unique per flow, and topological
-- (a step may only depend on steps added before it); deps_count equals the number
-- of rows in pgflow.deps naming the step as child; NULL options inherit the flow's.
create table pgflow.steps (
  flow_slug               text not null references pgflow.flows (flow_slug),
  step_slug               text not null,
  step_type               text not null default 'single',
  step_index              int not null default 0,
  deps_count              int not null default 0 check (deps_count >= 0),
  opt_max_attempts        int,
  opt_base_delay          int,
  opt_timeout             int,
  opt_start_delay         int,
  required_input_pattern  jsonb,
  forbidden_input_pattern jsonb,
  when_unmet              text not null default 'skip',
  when_exhausted          text not null default 'fail',
  created_at              timestamptz not null default now(),
  primary key (flow_slug, step_slug),
  unique (flow_slug, step_index),
  check (pgflow.is_valid_slug(step_slug)),
  check (step_type in ('single', 'map')),
  constraint opt_max_attempts_is_nonnegative check (opt_max_attempts is null or opt_max_attempts >= 0),
  constraint opt_base_delay_is_nonnegative check (opt_base_delay is null or opt_base_delay >= 0),
  constraint opt_timeout_is_positive check (opt_timeout is null or opt_timeout > 0),
  constraint opt_start_delay_is_nonnegative check (opt_start_delay is null or opt_start_delay >= 0),
  constraint required_input_pattern_is_object check (
    required_input_pattern is null or jsonb_typeof(required_input_pattern) = 'object'
  ),
  constraint forbidden_input_pattern_is_object check (
    forbidden_input_pattern is null or jsonb_typeof(forbidden_input_pattern) = 'object'
  ),
  constraint when_unmet_is_valid check (when_unmet in ('fail', 'skip', 'skip-cascade')),
  constraint when_exhausted_is_valid check (when_exhausted in ('fail', 'skip', 'skip-cascade'))
);
