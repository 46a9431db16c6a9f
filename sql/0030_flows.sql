-- Table pgflow.flows: one row per flow definition, with the flow-wide default options.
-- Invariants: valid slug; max attempts >= 0; base delay >= 0; timeout > 0.
-- Each flow owns one pgmq queue named by its slug (created by create_flow).
create table pgflow.flows (
  flow_slug        text primary key not null,
  opt_max_attempts int not null default 3,
  opt_base_delay   int not null default 1,
  opt_timeout      int not null default 60,
  created_at       timestamptz not null default now(),
  constraint slug_is_valid check (pgflow.is_valid_slug(flow_slug)),
  constraint opt_max_attempts_is_nonnegative check (opt_max_attempts >= 0),
  constraint opt_base_delay_is_nonnegative check (opt_base_delay >= 0),
  constraint opt_timeout_is_positive check (opt_timeout > 0)
);
