-- replaceable
-- pgflow.apply_flow_options: sets the options of an existing flow and of its steps to those in
-- a shape (as `ensure_flow_compiled` takes it) and returns what changed, as an array of
-- {"step": <slug or null for the flow>, "option": "maxAttempts", "old": 3, "new": 7}.
-- Options only, never the shape: a shape that differs from the stored one is refused (nothing
-- changes), so steps, dependencies, types and conditions stay as they are, and so do runs.
-- An option the shape leaves out gets the value the flow would have if created from the shape
-- now: the create_flow default for flow options (3 attempts, base delay 5, timeout 60), NULL
-- (inherit the flow's) for step options. New values take effect for task attempts that start
-- or fail afterwards. Holds the flow's compile lock, so it never interleaves with
-- ensure_flow_compiled on the same flow.
create or replace function pgflow.apply_flow_options(flow_slug text, shape jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_changes jsonb := '[]'::jsonb;
  v_differences text[];
  v_flow pgflow.flows;
  v_step_shape jsonb;
  v_step pgflow.steps;
  v_option text;
  v_old int;
  v_new int;
begin
  perform pg_advisory_xact_lock(1, hashtext(apply_flow_options.flow_slug));

  select * into v_flow from pgflow.flows f where f.flow_slug = apply_flow_options.flow_slug for update;
  if not found then
    raise exception 'Flow % does not exist', quote_literal(apply_flow_options.flow_slug)
      using errcode = 'no_data_found',
            hint = 'Register it first (pgflow.ensure_flow_compiled or `pgflow flow add`).';
  end if;

  v_differences := pgflow._compare_flow_shapes(shape, pgflow._get_flow_shape(apply_flow_options.flow_slug));
  if cardinality(v_differences) > 0 then
    raise exception 'Flow % has a different shape; options were not applied', quote_literal(apply_flow_options.flow_slug)
      using errcode = 'invalid_parameter_value',
            detail = array_to_string(v_differences, E'\n');
  end if;

  -- Flow options: keys of the shape's "options" and the flows column each one sets.
  foreach v_option in array array['maxAttempts', 'baseDelay', 'timeout'] loop
    v_old := case v_option when 'maxAttempts' then v_flow.opt_max_attempts
                           when 'baseDelay' then v_flow.opt_base_delay
                           else v_flow.opt_timeout end;
    v_new := coalesce((shape -> 'options' ->> v_option)::int,
                      case v_option when 'maxAttempts' then 3 when 'baseDelay' then 5 else 60 end);
    if v_new is distinct from v_old then
      v_changes := v_changes || jsonb_build_object('step', null, 'option', v_option, 'old', v_old, 'new', v_new);
    end if;
  end loop;
  -- The table's check constraints refuse out-of-range values with their own names.
  update pgflow.flows f
     set opt_max_attempts = coalesce((shape -> 'options' ->> 'maxAttempts')::int, 3),
         opt_base_delay = coalesce((shape -> 'options' ->> 'baseDelay')::int, 5),
         opt_timeout = coalesce((shape -> 'options' ->> 'timeout')::int, 60)
   where f.flow_slug = apply_flow_options.flow_slug;

  for v_step_shape in select value from jsonb_array_elements(coalesce(shape -> 'steps', '[]'::jsonb)) loop
    select * into v_step from pgflow.steps s
     where s.flow_slug = apply_flow_options.flow_slug and s.step_slug = v_step_shape ->> 'slug'
       for update;
    foreach v_option in array array['maxAttempts', 'baseDelay', 'timeout', 'startDelay'] loop
      v_old := case v_option when 'maxAttempts' then v_step.opt_max_attempts
                             when 'baseDelay' then v_step.opt_base_delay
                             when 'timeout' then v_step.opt_timeout
                             else v_step.opt_start_delay end;
      v_new := (v_step_shape -> 'options' ->> v_option)::int;
      if v_new is distinct from v_old then
        v_changes := v_changes || jsonb_build_object('step', v_step.step_slug, 'option', v_option, 'old', v_old, 'new', v_new);
      end if;
    end loop;
    update pgflow.steps s
       set opt_max_attempts = (v_step_shape -> 'options' ->> 'maxAttempts')::int,
           opt_base_delay = (v_step_shape -> 'options' ->> 'baseDelay')::int,
           opt_timeout = (v_step_shape -> 'options' ->> 'timeout')::int,
           opt_start_delay = (v_step_shape -> 'options' ->> 'startDelay')::int
     where s.flow_slug = apply_flow_options.flow_slug and s.step_slug = v_step.step_slug;
  end loop;

  return v_changes;
end;
$$;

revoke execute on function pgflow.apply_flow_options(text, jsonb) from public;
