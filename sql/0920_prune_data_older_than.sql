-- replaceable
-- pgflow.prune_data_older_than: retention. Deletes workers whose last heartbeat is older than
-- the cut; runs that finished (completed, failed or cancelled) before the cut with their live
-- messages, tasks and step states; and archived queue messages older than the cut. A started
-- run is never pruned. Works in batches of 1000 runs, each locking only its own rows, so it
-- never holds long locks on a busy database. Returns nothing, as upstream's documented snippet.
create or replace function pgflow.prune_data_older_than(retention_interval interval)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_cutoff timestamptz := now() - retention_interval;
  v_batch uuid[];
  v_flow record;
  v_ids bigint[];
begin
  delete from pgflow.workers w
   where w.last_heartbeat_at < v_cutoff
     and not exists (select 1 from pgflow.step_tasks t where t.last_worker_id = w.worker_id and t.status = 'started');

  loop
    select array_agg(r.run_id) into v_batch
      from (
        select r.run_id from pgflow.runs r
         where r.status in ('completed', 'failed', 'cancelled')
           and coalesce(r.completed_at, r.failed_at, r.cancelled_at) < v_cutoff
         limit 1000
           for update skip locked
      ) r;
    exit when v_batch is null;

    for v_flow in
      select t.flow_slug, array_agg(t.message_id) as ids
        from pgflow.step_tasks t
       where t.run_id = any (v_batch) and t.message_id is not null and t.status in ('queued', 'started')
       group by t.flow_slug
    loop
      perform pgmq.delete(v_flow.flow_slug, v_flow.ids);
    end loop;

    delete from pgflow.step_tasks t where t.run_id = any (v_batch);
    delete from pgflow.step_states ss where ss.run_id = any (v_batch);
    delete from pgflow.runs r where r.run_id = any (v_batch);
  end loop;

  for v_flow in select f.flow_slug from pgflow.flows f loop
    if exists (select 1 from pgmq.list_queues() q where q.queue_name = v_flow.flow_slug) then
      execute format('delete from pgmq.%I where archived_at < $1', pgmq.format_table_name(v_flow.flow_slug, 'a'))
        using v_cutoff;
    end if;
  end loop;
end;
$$;
