-- replaceable
-- pgflow._archive_messages: archives the messages of a run's queued or started tasks,
-- optionally only those of one step. Used when a run fails, is cancelled, or a step is
-- skipped, so no worker picks up work whose result can no longer count.
create or replace function pgflow._archive_messages(p_run_id uuid, p_step_slug text default null)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_flow_slug text;
  v_ids bigint[];
begin
  select r.flow_slug into v_flow_slug from pgflow.runs r where r.run_id = p_run_id;
  select array_agg(t.message_id order by t.message_id) into v_ids
    from pgflow.step_tasks t
   where t.run_id = p_run_id
     and (p_step_slug is null or t.step_slug = p_step_slug)
     and t.status in ('queued', 'started')
     and t.message_id is not null;
  if v_ids is not null then
    perform pgmq.archive(v_flow_slug, v_ids);
  end if;
end;
$$;
