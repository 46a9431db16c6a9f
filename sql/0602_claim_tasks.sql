-- replaceable
-- pgflow.claim_tasks (pgflow-rs extension): reads up to `qty` visible messages of a flow's
-- queue and starts their tasks for `worker_id` (as pgmq.read + start_tasks would), in one
-- statement, stamping every started task with the caller's `claim_id`. Idempotent per
-- claim_id: when tasks of this claim are already started by this worker, nothing new is read
-- and those tasks are returned again. So a worker that lost the reply (connection cut after
-- the commit) retries the same call with the same claim_id and gets exactly the tasks it
-- claimed, instead of stranding them until the stall sweep. `vt` is the read's visibility
-- timeout; start_tasks then moves each message to its step's timeout + 2 s.
create or replace function pgflow.claim_tasks(flow_slug text, worker_id uuid, claim_id uuid, qty integer, vt integer default 30)
returns setof pgflow.step_task_record
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replayed boolean;
begin
  if claim_id is null then
    raise exception 'claim_tasks needs a claim_id (a new uuid per claim, reused only to retry it)';
  end if;

  select true into v_replayed
    from pgflow.step_tasks t
   where t.last_claim_id = claim_tasks.claim_id and t.status = 'started'
     and t.last_worker_id = claim_tasks.worker_id and t.flow_slug = claim_tasks.flow_slug
   limit 1;

  if v_replayed then
    return query
    select r.* from (
      select array_agg(t.run_id) as run_ids, array_agg(t.step_slug) as slugs,
             array_agg(t.task_index) as idx, array_agg(t.message_id) as msgs
        from pgflow.step_tasks t
       where t.last_claim_id = claim_tasks.claim_id and t.status = 'started'
         and t.last_worker_id = claim_tasks.worker_id and t.flow_slug = claim_tasks.flow_slug
    ) c
    cross join lateral pgflow._task_records(claim_tasks.flow_slug, c.run_ids, c.slugs, c.idx, c.msgs) r;
    return;
  end if;

  return query
  select * from pgflow._start_tasks(
    claim_tasks.flow_slug,
    array(select m.msg_id from pgmq.read(claim_tasks.flow_slug, claim_tasks.vt, claim_tasks.qty) m),
    claim_tasks.worker_id,
    claim_tasks.claim_id);
end;
$$;
