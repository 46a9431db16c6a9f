-- replaceable
-- pgflow._get_flow_shape: the stored flow as a shape (SPEC §6.1): steps in step_index
-- order with slug, stepType, sorted dependencies, whenUnmet, whenExhausted and both patterns
-- wrapped as {"defined": bool[, "value": ...]}. No options. {"steps": []} for an unknown flow.
create or replace function pgflow._get_flow_shape(p_flow_slug text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('steps', coalesce(jsonb_agg(
           jsonb_build_object(
             'slug', s.step_slug,
             'stepType', s.step_type,
             'dependencies', coalesce((
               select jsonb_agg(d.dep_slug order by d.dep_slug)
                 from pgflow.deps d
                where d.flow_slug = s.flow_slug and d.step_slug = s.step_slug), '[]'::jsonb),
             'whenUnmet', s.when_unmet,
             'whenExhausted', s.when_exhausted,
             'requiredInputPattern', case when s.required_input_pattern is null then '{"defined": false}'::jsonb
               else jsonb_build_object('defined', true, 'value', s.required_input_pattern) end,
             'forbiddenInputPattern', case when s.forbidden_input_pattern is null then '{"defined": false}'::jsonb
               else jsonb_build_object('defined', true, 'value', s.forbidden_input_pattern) end)
           order by s.step_index), '[]'::jsonb))
    from pgflow.steps s
   where s.flow_slug = p_flow_slug;
$$;
