-- replaceable
-- pgflow._cascade_force_skip_steps: skips a step and, transitively, every dependent still
-- created or started. The trigger step gets p_skip_reason, the others dependency_skipped;
-- remaining_tasks becomes NULL; their queued/started messages are archived; remaining_steps
-- drops by the number skipped, which is returned (a repeat call skips nothing and returns 0).
-- Emits step:skipped in topological (step_index) order. Does not complete the run: the
-- caller does. Runs under the caller's run-row lock.
create or replace function pgflow._cascade_force_skip_steps(run_id uuid, step_slug text, skip_reason text)
returns int
language plpgsql
set search_path = ''
as $$
declare
  v_flow_slug text;
  v_slugs text[];
  v_slug text;
begin
  select r.flow_slug into v_flow_slug from pgflow.runs r where r.run_id = _cascade_force_skip_steps.run_id;
  if v_flow_slug is null then
    raise exception 'Run not found: %', _cascade_force_skip_steps.run_id;
  end if;

  with recursive descendants(slug) as (
    select _cascade_force_skip_steps.step_slug
    union
    select d.step_slug from pgflow.deps d join descendants on d.dep_slug = descendants.slug
     where d.flow_slug = v_flow_slug
  )
  select array_agg(ss.step_slug order by s.step_index) into v_slugs
    from pgflow.step_states ss
    join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
   where ss.run_id = _cascade_force_skip_steps.run_id
     and ss.step_slug in (select slug from descendants)
     and ss.status in ('created', 'started');

  if v_slugs is null then
    return 0;
  end if;

  update pgflow.step_states ss
     set status = 'skipped',
         skip_reason = case when ss.step_slug = _cascade_force_skip_steps.step_slug
                            then _cascade_force_skip_steps.skip_reason else 'dependency_skipped' end,
         skipped_at = now(),
         remaining_tasks = null
   where ss.run_id = _cascade_force_skip_steps.run_id and ss.step_slug = any (v_slugs);

  foreach v_slug in array v_slugs loop
    perform pgflow.emit_event('step:' || v_slug || ':skipped', jsonb_build_object(
      'event_type', 'step:skipped',
      'run_id', _cascade_force_skip_steps.run_id,
      'flow_slug', v_flow_slug,
      'step_slug', v_slug,
      'status', 'skipped',
      'skip_reason', case when v_slug = _cascade_force_skip_steps.step_slug
                          then _cascade_force_skip_steps.skip_reason else 'dependency_skipped' end,
      'skipped_at', now()));
    perform pgflow._archive_messages(_cascade_force_skip_steps.run_id, v_slug);
  end loop;

  update pgflow.runs r
     set remaining_steps = r.remaining_steps - cardinality(v_slugs)
   where r.run_id = _cascade_force_skip_steps.run_id;

  return cardinality(v_slugs);
end;
$$;
