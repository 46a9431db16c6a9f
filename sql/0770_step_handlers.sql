-- Table pgflow.step_handlers (pgflow-rs extension): the built-in handler spec of a step
-- (`{"kind": "http", ...}`), run by `pgflow worker` without Rust code. A handler is
-- configuration, like a step's options: it is not part of the flow's shape, so changing it
-- never needs a recompile. Invariants: at most one spec per step; the step exists (rows go
-- away with their step, also when a flow is deleted or recompiled); the spec is an object
-- whose `kind` is a non-empty string. The per-kind fields are checked by the Rust registry
-- (`pgflow flow add`, and `pgflow worker` at start-up).
create table pgflow.step_handlers (
  flow_slug  text not null,
  step_slug  text not null,
  spec       jsonb not null,
  updated_at timestamptz not null default now(),
  primary key (flow_slug, step_slug),
  foreign key (flow_slug, step_slug) references pgflow.steps (flow_slug, step_slug) on delete cascade,
  constraint spec_is_object_with_kind check (
    jsonb_typeof(spec) = 'object'
    and jsonb_typeof(spec -> 'kind') = 'string'
    and length(spec ->> 'kind') > 0
  )
);
