-- replaceable
-- pgflow.maybe_complete_run: completes a started run once remaining_steps reaches 0.
-- Output is an object of the completed leaf steps (steps nothing depends on): slug -> stored
-- output; skipped or failed leaves are left out; NULL when there is none. Emits run:completed
-- exactly once: a terminal run is never touched again.
create or replace function pgflow.maybe_complete_run(run_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
begin
  update pgflow.runs r
     set status = 'completed',
         completed_at = now(),
         output = (
           select jsonb_object_agg(ss.step_slug, ss.output)
             from pgflow.step_states ss
            where ss.run_id = r.run_id
              and ss.status = 'completed'
              and not exists (
                select 1 from pgflow.deps d
                 where d.flow_slug = ss.flow_slug and d.dep_slug = ss.step_slug))
   where r.run_id = maybe_complete_run.run_id
     and r.remaining_steps = 0
     and r.status = 'started'
  returning * into v_run;

  if v_run.run_id is not null then
    perform pgflow.emit_event('run:completed', jsonb_build_object(
      'event_type', 'run:completed',
      'run_id', v_run.run_id,
      'flow_slug', v_run.flow_slug,
      'status', 'completed',
      'output', v_run.output,
      'completed_at', v_run.completed_at));
  end if;
end;
$$;
