-- Table pgflow.deps: the edges of a flow's DAG; dep_slug is the parent, step_slug the child.
-- Invariants: both ends are steps of the same flow; no self-edges. Because a dependency
-- must already exist when add_step inserts the edge, the graph is acyclic by construction.
create table pgflow.deps (
  flow_slug  text not null references pgflow.flows (flow_slug),
  dep_slug   text not null,
  step_slug  text not null,
  created_at timestamptz not null default now(),
  primary key (flow_slug, dep_slug, step_slug),
  foreign key (flow_slug, dep_slug) references pgflow.steps (flow_slug, step_slug),
  foreign key (flow_slug, step_slug) references pgflow.steps (flow_slug, step_slug),
  check (dep_slug <> step_slug)
);

create index idx_deps_by_flow_step on pgflow.deps (flow_slug, step_slug);
create index idx_deps_by_flow_dep on pgflow.deps (flow_slug, dep_slug);
