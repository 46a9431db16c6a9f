-- replaceable
-- pgflow.start_tasks: a worker claims the tasks behind the queue messages it just read.
-- Only this flow's queued tasks of started steps in started runs move to started (attempts
-- +1, started_at, last_worker_id); other messages are ignored. Returns only the rows this
-- call's own UPDATE changed, so two racing workers never both get a task (upstream returns
-- snapshot rows). Each started message's visibility moves to the step's timeout + 2 s
-- (upstream means to but never does), so a handler running within its timeout is never
-- handed to a second worker. Inputs per SPEC §3.4: root single -> {} with flow_input = run
-- input; dependent single -> completed parents' outputs; map -> its element of the array.
create or replace function pgflow.start_tasks(flow_slug text, msg_ids bigint[], worker_id uuid)
returns setof pgflow.step_task_record
language plpgsql
set search_path = ''
as $$
declare
  v_run_ids uuid[];
  v_step_slugs text[];
  v_task_indexes int[];
  v_msg_ids bigint[];
  v_offsets int[];
begin
  with started as (
    update pgflow.step_tasks t
       set status = 'started',
           attempts_count = t.attempts_count + 1,
           started_at = now(),
           last_worker_id = start_tasks.worker_id
      from pgflow.runs r, pgflow.step_states ss
     where t.flow_slug = start_tasks.flow_slug
       and t.message_id = any (start_tasks.msg_ids)
       and t.status = 'queued'
       and r.run_id = t.run_id and r.status = 'started'
       and ss.run_id = t.run_id and ss.step_slug = t.step_slug and ss.status = 'started'
    returning t.run_id, t.step_slug, t.task_index, t.message_id
  )
  select array_agg(st.run_id order by st.message_id),
         array_agg(st.step_slug order by st.message_id),
         array_agg(st.task_index order by st.message_id),
         array_agg(st.message_id order by st.message_id),
         array_agg(coalesce(s.opt_timeout, f.opt_timeout) + 2 order by st.message_id)
    into v_run_ids, v_step_slugs, v_task_indexes, v_msg_ids, v_offsets
    from started st
    join pgflow.steps s on s.flow_slug = start_tasks.flow_slug and s.step_slug = st.step_slug
    join pgflow.flows f on f.flow_slug = start_tasks.flow_slug;

  if v_msg_ids is null then
    return;
  end if;

  perform pgflow.set_vt_batch(start_tasks.flow_slug, v_msg_ids, v_offsets);

  return query
  select start_tasks.flow_slug,
         st.run_id,
         st.step_slug,
         case
           when s.step_type = 'map' and s.deps_count = 0 then r.input -> st.task_index
           when s.step_type = 'map' then (
             select ps.output -> st.task_index
               from pgflow.deps d
               join pgflow.step_states ps on ps.run_id = st.run_id and ps.step_slug = d.dep_slug
              where d.flow_slug = start_tasks.flow_slug and d.step_slug = st.step_slug)
           when s.deps_count = 0 then '{}'::jsonb
           else pgflow._step_input(st.run_id, start_tasks.flow_slug, st.step_slug)
         end,
         st.message_id,
         st.task_index,
         case when s.step_type = 'single' and s.deps_count = 0 then r.input else null end
    from unnest(v_run_ids, v_step_slugs, v_task_indexes, v_msg_ids)
           as st(run_id, step_slug, task_index, message_id)
    join pgflow.runs r on r.run_id = st.run_id
    join pgflow.steps s on s.flow_slug = start_tasks.flow_slug and s.step_slug = st.step_slug
   order by st.message_id;
end;
$$;
