-- replaceable
-- pgflow._complete_taskless_wave: one wave of the taskless cascade. Every created step of
-- a started run with remaining_deps 0 and initial_tasks 0 (an empty map) completes at once
-- with output [] for a map (NULL for a single step); its children lose one remaining dep per
-- completed parent and a child map still waiting for its count learns it has 0 tasks;
-- remaining_steps drops by the wave's size. Emits step:completed per step in step_index
-- order. Returns the number of steps completed. Runs under the caller's run-row lock.
create or replace function pgflow._complete_taskless_wave(p_run_id uuid)
returns int
language plpgsql
set search_path = ''
as $$
declare
  v_slugs text[];
  v_slug text;
begin
  if (select r.status from pgflow.runs r where r.run_id = p_run_id) is distinct from 'started' then
    return 0;
  end if;

  select array_agg(w.step_slug order by w.step_index) into v_slugs
    from (
      select ss.step_slug, s.step_index
        from pgflow.step_states ss
        join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
       where ss.run_id = p_run_id
         and ss.status = 'created'
         and ss.remaining_deps = 0
         and ss.initial_tasks = 0
         for update of ss
    ) w;

  if v_slugs is null then
    return 0;
  end if;

  update pgflow.step_states ss
     set status = 'completed',
         started_at = now(),
         completed_at = now(),
         remaining_tasks = 0,
         output = case when s.step_type = 'map' then '[]'::jsonb else null end
    from pgflow.steps s
   where ss.run_id = p_run_id
     and ss.step_slug = any (v_slugs)
     and s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug;

  foreach v_slug in array v_slugs loop
    perform pgflow.emit_event('step:' || v_slug || ':completed', jsonb_build_object(
      'event_type', 'step:completed',
      'run_id', p_run_id,
      'step_slug', v_slug,
      'status', 'completed',
      'started_at', now(),
      'completed_at', now(),
      'remaining_tasks', 0,
      'remaining_deps', 0,
      'output', (select ss.output from pgflow.step_states ss
                  where ss.run_id = p_run_id and ss.step_slug = v_slug)));
  end loop;

  perform pgflow._release_children(p_run_id, v_slugs);

  update pgflow.runs r
     set remaining_steps = r.remaining_steps - cardinality(v_slugs)
   where r.run_id = p_run_id;

  return cardinality(v_slugs);
end;
$$;
