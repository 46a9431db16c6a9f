-- replaceable
-- pgflow.delete_flow_and_data: removes a flow with everything it owns: its pgmq queue (live
-- and archive tables), then its tasks, step states, runs, edges, steps and the flow row.
-- Destructive by design; used by ensure_flow_compiled to recompile a changed flow.
create or replace function pgflow.delete_flow_and_data(p_flow_slug text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if exists (select 1 from pgmq.list_queues() q where q.queue_name = p_flow_slug) then
    perform pgmq.drop_queue(p_flow_slug);
  end if;
  delete from pgflow.step_tasks t where t.flow_slug = p_flow_slug;
  delete from pgflow.step_states ss where ss.flow_slug = p_flow_slug;
  delete from pgflow.runs r where r.flow_slug = p_flow_slug;
  delete from pgflow.deps d where d.flow_slug = p_flow_slug;
  delete from pgflow.steps s where s.flow_slug = p_flow_slug;
  delete from pgflow.flows f where f.flow_slug = p_flow_slug;
end;
$$;
