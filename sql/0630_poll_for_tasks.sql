-- replaceable
-- pgflow.poll_for_tasks: deprecated upstream in favour of pgmq.read_with_poll followed by
-- pgflow.start_tasks. Kept so old callers get a clear NOTICE instead of an error; returns no rows.
create or replace function pgflow.poll_for_tasks(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer default 5,
  poll_interval_ms integer default 100
)
returns setof pgflow.step_task_record
language plpgsql
set search_path = ''
as $$
begin
  raise notice 'pgflow.poll_for_tasks is deprecated and returns no rows: read with pgmq.read_with_poll, then call pgflow.start_tasks';
  return;
end;
$$;
