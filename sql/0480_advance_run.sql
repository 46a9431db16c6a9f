-- replaceable
-- pgflow._advance_run: the cascade every entry point runs after changing a run's state:
-- resolve conditions and complete taskless steps, alternating until neither changes anything
-- (upstream runs each once, so a conditional step made ready by the taskless cascade would
-- start unevaluated), then start the ready steps and complete the run if nothing remains.
-- Returns false when the run is not (or no longer) started: failed by a condition, or
-- already terminal. The 50-iteration limit mirrors upstream's taskless cascade limit.
-- Runs under the caller's run-row lock.
create or replace function pgflow._advance_run(p_run_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_iterations int := 0;
begin
  loop
    v_iterations := v_iterations + 1;
    if v_iterations > 50 then
      raise exception 'Cascade loop exceeded safety limit of % iterations', 50;
    end if;
    if not pgflow.cascade_resolve_conditions(p_run_id) then
      return false;
    end if;
    exit when pgflow._complete_taskless_wave(p_run_id) = 0;
  end loop;

  perform pgflow.start_ready_steps(p_run_id);
  perform pgflow.maybe_complete_run(p_run_id);
  return true;
end;
$$;
