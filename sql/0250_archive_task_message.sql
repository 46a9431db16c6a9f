-- replaceable
-- pgflow._archive_task_message: archives one task's queue message, if it still has one.
-- Archiving (never deleting) keeps the message history in pgmq's archive table.
create or replace function pgflow._archive_task_message(p_run_id uuid, p_step_slug text, p_task_index int)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_flow_slug text;
  v_message_id bigint;
begin
  select t.flow_slug, t.message_id into v_flow_slug, v_message_id
    from pgflow.step_tasks t
   where t.run_id = p_run_id and t.step_slug = p_step_slug and t.task_index = p_task_index;
  if v_message_id is not null then
    perform pgmq.archive(v_flow_slug, v_message_id);
  end if;
end;
$$;
