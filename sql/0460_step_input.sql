-- replaceable
-- pgflow._step_input: the object a dependent step sees as input and its conditions are
-- checked against: completed parents' slug -> stored output. Skipped parents are absent
-- (not null); {} when no parent completed. Root steps use the run input instead.
create or replace function pgflow._step_input(p_run_id uuid, p_flow_slug text, p_step_slug text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(ps.step_slug, ps.output), '{}'::jsonb)
    from pgflow.deps d
    join pgflow.step_states ps on ps.run_id = p_run_id and ps.step_slug = d.dep_slug
   where d.flow_slug = p_flow_slug and d.step_slug = p_step_slug and ps.status = 'completed';
$$;
