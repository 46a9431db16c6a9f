-- replaceable
-- pgflow.add_step: appends a step (and its incoming edges) to a flow.
-- Invariants kept: step_index is the next index, so steps stay in topological order; every
-- dependency must already exist, so the DAG cannot get a cycle; deps_count equals the number
-- of edges; a map step has at most one dependency. Re-adding a step with the same structure
-- (type, dependencies, conditions) returns the existing row unchanged; re-adding it with a
-- different structure is refused (upstream silently adds edges and can corrupt deps_count).
-- Every refusal happens before the first write and names the offending value.
-- Maps (which may get an empty array) and conditional steps (which may be skipped) can
-- resolve without tasks, each one wave after its dependency; a run resolves at most 49 such
-- waves in a row (the cascades' 50-iteration safety limit), so a step that would end a longer
-- chain of them is refused here rather than failing every start_flow later.
create or replace function pgflow.add_step(
  flow_slug text,
  step_slug text,
  deps_slugs text[] default '{}',
  max_attempts int default null,
  base_delay int default null,
  timeout int default null,
  start_delay int default null,
  step_type text default 'single',
  required_input_pattern jsonb default null,
  forbidden_input_pattern jsonb default null,
  when_unmet text default 'skip',
  when_exhausted text default 'fail'
)
returns pgflow.steps
language plpgsql
set search_path = ''
as $$
declare
  v_deps text[] := coalesce(deps_slugs, '{}');
  v_type text := coalesce(step_type, 'single');
  v_existing pgflow.steps;
  v_existing_deps text[];
  v_missing text;
  v_dup text;
  v_step pgflow.steps;
  v_chain int;
begin
  -- Serializes concurrent definitions of one flow, so step_index stays unique and dense.
  perform 1 from pgflow.flows f where f.flow_slug = add_step.flow_slug for update;
  if not found then
    perform pgflow._raise_constraint_error('steps', 'steps_flow_slug_fkey',
      format('Flow %s does not exist: create it with pgflow.create_flow first.',
             coalesce(quote_literal(add_step.flow_slug), 'NULL')), true);
  end if;

  if not pgflow.is_valid_slug(add_step.step_slug) then
    perform pgflow._raise_constraint_error('steps', 'steps_step_slug_check', format(
      'Invalid step slug %s: a slug is 1 to 128 letters, digits or underscores, starts with a letter or underscore, and is not "run".',
      coalesce(quote_literal(left(add_step.step_slug, 200)), 'NULL')));
  end if;
  if v_type not in ('single', 'map') then
    perform pgflow._raise_constraint_error('steps', 'steps_step_type_check',
      format('Step %L has step_type %L; it must be ''single'' or ''map''.', add_step.step_slug, v_type));
  end if;
  if v_type = 'map' and cardinality(v_deps) > 1 then
    raise exception 'Map step "%" can have at most one dependency, but % were provided: %',
      add_step.step_slug, cardinality(v_deps), array_to_string(v_deps, ', ');
  end if;
  if when_unmet is null or when_unmet not in ('fail', 'skip', 'skip-cascade') then
    perform pgflow._raise_constraint_error('steps', 'when_unmet_is_valid',
      format('Step %L has when_unmet %s; it must be ''fail'', ''skip'' or ''skip-cascade''.',
             add_step.step_slug, coalesce(quote_literal(when_unmet), 'NULL')));
  end if;
  if when_exhausted is null or when_exhausted not in ('fail', 'skip', 'skip-cascade') then
    perform pgflow._raise_constraint_error('steps', 'when_exhausted_is_valid',
      format('Step %L has when_exhausted %s; it must be ''fail'', ''skip'' or ''skip-cascade''.',
             add_step.step_slug, coalesce(quote_literal(when_exhausted), 'NULL')));
  end if;
  if jsonb_typeof(required_input_pattern) is distinct from 'object' and required_input_pattern is not null then
    perform pgflow._raise_constraint_error('steps', 'required_input_pattern_is_object',
      format('Step %L: required_input_pattern must be a JSON object, got %s.',
             add_step.step_slug, jsonb_typeof(required_input_pattern)));
  end if;
  if jsonb_typeof(forbidden_input_pattern) is distinct from 'object' and forbidden_input_pattern is not null then
    perform pgflow._raise_constraint_error('steps', 'forbidden_input_pattern_is_object',
      format('Step %L: forbidden_input_pattern must be a JSON object, got %s.',
             add_step.step_slug, jsonb_typeof(forbidden_input_pattern)));
  end if;
  if max_attempts < 0 then
    perform pgflow._raise_constraint_error('steps', 'opt_max_attempts_is_nonnegative',
      format('Step %L: max_attempts must be 0 or more, got %s.', add_step.step_slug, max_attempts));
  end if;
  if base_delay < 0 then
    perform pgflow._raise_constraint_error('steps', 'opt_base_delay_is_nonnegative',
      format('Step %L: base_delay must be 0 or more, got %s.', add_step.step_slug, base_delay));
  end if;
  if timeout <= 0 then
    perform pgflow._raise_constraint_error('steps', 'opt_timeout_is_positive',
      format('Step %L: timeout must be more than 0 seconds, got %s.', add_step.step_slug, timeout));
  end if;
  if start_delay < 0 then
    perform pgflow._raise_constraint_error('steps', 'opt_start_delay_is_nonnegative',
      format('Step %L: start_delay must be 0 or more, got %s.', add_step.step_slug, start_delay));
  end if;
  if array_position(v_deps, null) is not null then
    perform pgflow._raise_constraint_error('deps', 'deps_flow_slug_dep_slug_fkey',
      format('Step %L lists a NULL dependency.', add_step.step_slug), true);
  end if;
  if add_step.step_slug = any (v_deps) then
    perform pgflow._raise_constraint_error('deps', 'deps_check',
      format('Step %L cannot depend on itself.', add_step.step_slug));
  end if;
  select d into v_dup from unnest(v_deps) d group by d having count(*) > 1 limit 1;
  if v_dup is not null then
    raise exception 'Step "%" lists dependency "%" more than once', add_step.step_slug, v_dup;
  end if;

  select * into v_existing from pgflow.steps s
   where s.flow_slug = add_step.flow_slug and s.step_slug = add_step.step_slug;
  if found then
    select coalesce(array_agg(d.dep_slug order by d.dep_slug), '{}') into v_existing_deps
      from pgflow.deps d where d.flow_slug = add_step.flow_slug and d.step_slug = add_step.step_slug;
    if v_existing.step_type is distinct from v_type
       or v_existing_deps is distinct from (select coalesce(array_agg(d order by d), '{}') from unnest(v_deps) d)
       or v_existing.required_input_pattern is distinct from required_input_pattern
       or v_existing.forbidden_input_pattern is distinct from forbidden_input_pattern
       or v_existing.when_unmet is distinct from when_unmet
       or v_existing.when_exhausted is distinct from when_exhausted then
      raise exception 'Step "%" already exists in flow "%" with a different definition',
        add_step.step_slug, add_step.flow_slug
        using detail = format('Existing: type %s, dependencies [%s], when_unmet %s, when_exhausted %s. Requested: type %s, dependencies [%s], when_unmet %s, when_exhausted %s.',
                              v_existing.step_type, array_to_string(v_existing_deps, ', '),
                              v_existing.when_unmet, v_existing.when_exhausted,
                              v_type, array_to_string(v_deps, ', '), when_unmet, when_exhausted),
              hint = 'A flow''s structure cannot change in place: use a new flow slug, or pgflow.ensure_flow_compiled with allow_data_loss.';
    end if;
    return v_existing;
  end if;

  select d into v_missing from unnest(v_deps) d
   where not exists (select 1 from pgflow.steps s where s.flow_slug = add_step.flow_slug and s.step_slug = d)
   limit 1;
  if v_missing is not null then
    perform pgflow._raise_constraint_error('deps', 'deps_flow_slug_dep_slug_fkey',
      format('Step %L depends on %L, which is not a step of flow %L (dependencies must be added first).',
             add_step.step_slug, v_missing, add_step.flow_slug), true);
  end if;

  if v_type = 'map' or required_input_pattern is not null or forbidden_input_pattern is not null then
    with recursive chain(step_slug, depth) as (
      select s.step_slug, 1
        from pgflow.steps s
       where s.flow_slug = add_step.flow_slug and s.step_slug = any (v_deps)
         and (s.step_type = 'map' or s.required_input_pattern is not null or s.forbidden_input_pattern is not null)
      union
      select s.step_slug, c.depth + 1
        from chain c
        join pgflow.deps d on d.flow_slug = add_step.flow_slug and d.step_slug = c.step_slug
        join pgflow.steps s on s.flow_slug = d.flow_slug and s.step_slug = d.dep_slug
       where c.depth < 50
         and (s.step_type = 'map' or s.required_input_pattern is not null or s.forbidden_input_pattern is not null)
    )
    select coalesce(max(c.depth), 0) + 1 into v_chain from chain c;
    if v_chain > 49 then
      raise exception 'Step "%" would end a chain of % steps that can resolve without tasks (maps and conditional steps), over the limit of 49',
        add_step.step_slug, v_chain
        using errcode = 'program_limit_exceeded',
              hint = 'A run resolves at most 49 such steps in a row; put a step without a condition between them.';
    end if;
  end if;

  insert into pgflow.steps (
    flow_slug, step_slug, step_type, step_index, deps_count,
    opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay,
    required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted
  )
  values (
    add_step.flow_slug, add_step.step_slug, v_type,
    (select coalesce(max(s.step_index) + 1, 0) from pgflow.steps s where s.flow_slug = add_step.flow_slug),
    cardinality(v_deps),
    max_attempts, base_delay, timeout, start_delay,
    required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted
  )
  returning * into v_step;

  insert into pgflow.deps (flow_slug, dep_slug, step_slug)
  select add_step.flow_slug, d, add_step.step_slug from unnest(v_deps) d
  on conflict do nothing;

  return v_step;
end;
$$;
