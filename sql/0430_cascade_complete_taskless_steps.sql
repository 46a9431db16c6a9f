-- replaceable
-- pgflow.cascade_complete_taskless_steps: completes taskless steps wave after wave until a
-- wave finds none, and returns how many it completed. A 51st wave raises, as upstream does,
-- so a pathological chain of 50 or more empty maps fails (and rolls back) instead of looping.
-- No-op on a run that is not started.
create or replace function pgflow.cascade_complete_taskless_steps(run_id uuid)
returns int
language plpgsql
set search_path = ''
as $$
declare
  v_total int := 0;
  v_wave int;
  v_iterations int := 0;
begin
  loop
    v_iterations := v_iterations + 1;
    if v_iterations > 50 then
      raise exception 'Cascade loop exceeded safety limit of % iterations', 50;
    end if;
    v_wave := pgflow._complete_taskless_wave(cascade_complete_taskless_steps.run_id);
    exit when v_wave = 0;
    v_total := v_total + v_wave;
  end loop;
  return v_total;
end;
$$;
