-- replaceable
-- pgflow.cascade_resolve_conditions: evaluates the conditions of every ready step (created,
-- remaining_deps 0, with a required or forbidden input pattern) until an iteration skips
-- nothing. Input: the run input for a root step, else the completed parents' outputs.
-- Met = (required is NULL or input @> required) and (forbidden is NULL or not input @> forbidden).
-- Unmet steps, by when_unmet: 'fail' fails the step and the run (returns false); 'skip' skips
-- the step, releasing its children (which may then be evaluated in the next iteration);
-- 'skip-cascade' skips it and all its dependents. Returns false when the run is (or became)
-- failed or cancelled, true otherwise. Runs under the caller's run-row lock.
create or replace function pgflow.cascade_resolve_conditions(run_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_iterations int := 0;
  v_failing text[];
  v_skipped text[];
  v_cascading text[];
  v_slug text;
begin
  loop
    select * into v_run from pgflow.runs r where r.run_id = cascade_resolve_conditions.run_id;
    if v_run.status is distinct from 'started' then
      return v_run.status = 'completed';
    end if;

    v_iterations := v_iterations + 1;
    if v_iterations > 50 then
      raise exception 'cascade_resolve_conditions exceeded safety limit of % iterations', 50;
    end if;

    select array_agg(u.step_slug order by u.step_index) filter (where u.when_unmet = 'fail'),
           array_agg(u.step_slug order by u.step_index) filter (where u.when_unmet = 'skip'),
           array_agg(u.step_slug order by u.step_index) filter (where u.when_unmet = 'skip-cascade')
      into v_failing, v_skipped, v_cascading
      from (
        select ss.step_slug, s.step_index, s.when_unmet
          from pgflow.step_states ss
          join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
          cross join lateral (
            select case when s.deps_count = 0 then v_run.input
                        else pgflow._step_input(v_run.run_id, v_run.flow_slug, ss.step_slug) end as input
          ) ci
         where ss.run_id = v_run.run_id
           and ss.status = 'created'
           and ss.remaining_deps = 0
           and (s.required_input_pattern is not null or s.forbidden_input_pattern is not null)
           and not (
             (s.required_input_pattern is null or ci.input @> s.required_input_pattern)
             and (s.forbidden_input_pattern is null or not (ci.input @> s.forbidden_input_pattern))
           )
      ) u;

    -- 1. fail mode: the first unmet step fails the whole run.
    if v_failing is not null then
      update pgflow.step_states ss
         set status = 'failed', failed_at = now(), error_message = 'Condition not met'
       where ss.run_id = v_run.run_id and ss.step_slug = v_failing[1];
      perform pgflow.emit_event('step:' || v_failing[1] || ':failed', jsonb_build_object(
        'event_type', 'step:failed',
        'run_id', v_run.run_id,
        'step_slug', v_failing[1],
        'status', 'failed',
        'error_message', 'Condition not met',
        'failed_at', now()));
      perform pgflow._fail_run(v_run.run_id, 'Condition not met');
      return false;
    end if;

    -- 2. skip mode: skip, then release the children as if the parent had resolved.
    if v_skipped is not null then
      update pgflow.step_states ss
         set status = 'skipped', skip_reason = 'condition_unmet', skipped_at = now()
       where ss.run_id = v_run.run_id and ss.step_slug = any (v_skipped);
      foreach v_slug in array v_skipped loop
        perform pgflow.emit_event('step:' || v_slug || ':skipped', jsonb_build_object(
          'event_type', 'step:skipped',
          'run_id', v_run.run_id,
          'flow_slug', v_run.flow_slug,
          'step_slug', v_slug,
          'status', 'skipped',
          'skip_reason', 'condition_unmet',
          'skipped_at', now()));
      end loop;
      perform pgflow._release_children(v_run.run_id, v_skipped);
      update pgflow.runs r set remaining_steps = r.remaining_steps - cardinality(v_skipped)
       where r.run_id = v_run.run_id;
    end if;

    -- 3. skip-cascade mode: skip the step and everything downstream of it.
    foreach v_slug in array coalesce(v_cascading, '{}') loop
      perform pgflow._cascade_force_skip_steps(v_run.run_id, v_slug, 'condition_unmet');
    end loop;

    exit when v_skipped is null;
  end loop;
  return true;
end;
$$;
