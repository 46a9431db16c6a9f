-- replaceable
-- pgflow._start_tasks: the body of start_tasks, shared with claim_tasks (which also stamps
-- its claim id on the tasks it starts). Moves this flow's queued tasks of started steps in
-- started runs to started, returning only the rows its own UPDATE changed, and sets each
-- started message's visibility to its step's timeout + 2 s.
create or replace function pgflow._start_tasks(flow_slug text, msg_ids bigint[], worker_id uuid, claim_id uuid)
returns setof pgflow.step_task_record
language plpgsql
set search_path = ''
-- Every query here is a point lookup by key. Right after a wide map is queued the table's
-- statistics are stale and the planner would rather scan all its tasks; do not let it.
set enable_seqscan = off
as $$
declare
  v_run_ids uuid[];
  v_step_slugs text[];
  v_task_indexes int[];
  v_msg_ids bigint[];
  v_offsets int[];
begin
  -- The candidates are found through the message id index alone (a materialized CTE with
  -- no other predicate), so even with stale statistics right after a wide map was queued
  -- the planner cannot start from the step instead and scan every task of the map.
  with candidates as materialized (
    select c.run_id, c.step_slug, c.task_index, c.flow_slug
      from unnest(_start_tasks.msg_ids) as m(id)
      join pgflow.step_tasks c on c.message_id = m.id
  ),
  started as (
    update pgflow.step_tasks t
       set status = 'started',
           attempts_count = t.attempts_count + 1,
           -- now() is this transaction's start, which may precede the commit that queued
           -- the task (a read racing the enqueue): never stamp a start before the queueing.
           started_at = greatest(now(), t.queued_at),
           last_worker_id = _start_tasks.worker_id,
           last_claim_id = _start_tasks.claim_id
      from candidates c, pgflow.runs r, pgflow.step_states ss
     where t.run_id = c.run_id and t.step_slug = c.step_slug and t.task_index = c.task_index
       and c.flow_slug = _start_tasks.flow_slug
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
    join pgflow.steps s on s.flow_slug = _start_tasks.flow_slug and s.step_slug = st.step_slug
    join pgflow.flows f on f.flow_slug = _start_tasks.flow_slug;

  if v_msg_ids is null then
    return;
  end if;

  perform pgflow.set_vt_batch(_start_tasks.flow_slug, v_msg_ids, v_offsets);

  return query
  select * from pgflow._task_records(_start_tasks.flow_slug, v_run_ids, v_step_slugs, v_task_indexes, v_msg_ids);
end;
$$;
