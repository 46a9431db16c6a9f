-- replaceable
-- pgflow._create_flow_from_shape: compiles a shape into create_flow + one add_step per step,
-- in array order, with the shape's options, step types, conditions (a pattern's value only
-- when defined) and modes (whenUnmet default 'skip', whenExhausted default 'fail').
create or replace function pgflow._create_flow_from_shape(p_flow_slug text, p_shape jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_step jsonb;
begin
  perform pgflow.create_flow(
    p_flow_slug,
    max_attempts => (p_shape #>> '{options,maxAttempts}')::int,
    base_delay => (p_shape #>> '{options,baseDelay}')::int,
    timeout => (p_shape #>> '{options,timeout}')::int);

  for v_step in select value from jsonb_array_elements(coalesce(p_shape -> 'steps', '[]'::jsonb)) loop
    perform pgflow.add_step(
      flow_slug => p_flow_slug,
      step_slug => v_step ->> 'slug',
      deps_slugs => array(select jsonb_array_elements_text(coalesce(v_step -> 'dependencies', '[]'::jsonb))),
      max_attempts => (v_step #>> '{options,maxAttempts}')::int,
      base_delay => (v_step #>> '{options,baseDelay}')::int,
      timeout => (v_step #>> '{options,timeout}')::int,
      start_delay => (v_step #>> '{options,startDelay}')::int,
      step_type => coalesce(v_step ->> 'stepType', 'single'),
      required_input_pattern => case when (v_step #>> '{requiredInputPattern,defined}')::boolean
                                     then v_step #> '{requiredInputPattern,value}' end,
      forbidden_input_pattern => case when (v_step #>> '{forbiddenInputPattern,defined}')::boolean
                                      then v_step #> '{forbiddenInputPattern,value}' end,
      when_unmet => coalesce(v_step ->> 'whenUnmet', 'skip'),
      when_exhausted => coalesce(v_step ->> 'whenExhausted', 'fail'));
  end loop;
end;
$$;
