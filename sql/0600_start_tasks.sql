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
language sql
set search_path = ''
as $$
  select * from pgflow._start_tasks(start_tasks.flow_slug, start_tasks.msg_ids, start_tasks.worker_id, null);
$$;
