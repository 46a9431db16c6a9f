-- replaceable
-- pgflow.start_flow: starts one run of a flow on a JSON input, in one transaction: inserts
-- the run (remaining_steps = number of steps) and one step_state per step (remaining_deps =
-- deps_count; initial_tasks 1 for a single step, the input array's length for a root map,
-- NULL for a dependent map), emits run:started, then resolves conditions, completes taskless
-- steps, starts the ready ones and completes the run if nothing is left (a flow without steps
-- completes at once with NULL output). Returns the run row (failed when a root condition in
-- fail mode is unmet). A root map needs an array input of at most pgflow.config.max_map_width
-- elements; every refusal happens before any write.
create or replace function pgflow.start_flow(flow_slug text, input jsonb, run_id uuid default null)
returns setof pgflow.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_input_length int;
  v_too_large text;
  v_max_width int := coalesce((select c.max_map_width from pgflow.config c), 100000);
begin
  if exists (select 1 from pgflow.steps s
              where s.flow_slug = start_flow.flow_slug and s.step_type = 'map' and s.deps_count = 0) then
    if input is null then
      raise exception 'Flow % has root map steps but input is NULL', start_flow.flow_slug;
    end if;
    if jsonb_typeof(input) <> 'array' then
      raise exception 'Flow % has root map steps but input is not an array (got %)',
        start_flow.flow_slug, jsonb_typeof(input);
    end if;
  end if;
  if not exists (select 1 from pgflow.flows f where f.flow_slug = start_flow.flow_slug) then
    perform pgflow._raise_constraint_error('runs', 'runs_flow_slug_fkey',
      format('Flow %s does not exist.', coalesce(quote_literal(left(start_flow.flow_slug, 200)), 'NULL')), true);
  end if;
  if input is null then
    raise exception using
      message = 'null value in column "input" of relation "runs" violates not-null constraint',
      errcode = 'not_null_violation',
      detail = format('start_flow(%L, NULL): the run input must be a JSON value (use ''{}''::jsonb or ''null''::jsonb for none).',
                      start_flow.flow_slug),
      column = 'input', table = 'runs', schema = 'pgflow';
  end if;

  v_too_large := pgflow._payload_too_large('run input', input);
  if v_too_large is not null then
    raise exception using
      message = v_too_large,
      errcode = 'program_limit_exceeded',
      hint = 'Store large data elsewhere and pass a reference, or raise pgflow.config.max_payload_bytes.';
  end if;

  -- Computed apart from the CASE below: the planner would fold jsonb_array_length of a
  -- non-array constant (and raise) even for flows without a root map.
  if jsonb_typeof(input) = 'array' then
    v_input_length := jsonb_array_length(input);
    if v_input_length > v_max_width and exists (
         select 1 from pgflow.steps s
          where s.flow_slug = start_flow.flow_slug and s.step_type = 'map' and s.deps_count = 0) then
      raise exception using
        message = format('run input has %s elements, but a map step may fan out to at most %s tasks (pgflow.config.max_map_width)',
                         v_input_length, v_max_width),
        errcode = 'program_limit_exceeded',
        hint = 'Split the input into several runs, or raise pgflow.config.max_map_width.';
    end if;
  end if;

  insert into pgflow.runs (run_id, flow_slug, input, remaining_steps)
  values (
    coalesce(start_flow.run_id, gen_random_uuid()),
    start_flow.flow_slug,
    start_flow.input,
    (select count(*) from pgflow.steps s where s.flow_slug = start_flow.flow_slug)
  )
  returning * into v_run;

  insert into pgflow.step_states (flow_slug, run_id, step_slug, remaining_deps, initial_tasks)
  select s.flow_slug, v_run.run_id, s.step_slug, s.deps_count,
         case when s.step_type = 'single' then 1
              when s.deps_count = 0 then v_input_length
              else null end
    from pgflow.steps s
   where s.flow_slug = v_run.flow_slug;

  perform pgflow.emit_event('run:started', jsonb_build_object(
    'event_type', 'run:started',
    'run_id', v_run.run_id,
    'flow_slug', v_run.flow_slug,
    'input', v_run.input,
    'status', 'started',
    'remaining_steps', v_run.remaining_steps,
    'started_at', v_run.started_at));

  perform pgflow._advance_run(v_run.run_id);

  return query select * from pgflow.runs r where r.run_id = v_run.run_id;
end;
$$;
