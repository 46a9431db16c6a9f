-- A diamond flow (a -> b, c -> d) defined and run with nothing but psql and the pgflow SQL API.
-- The DO block plays the worker: read messages, start their tasks, compute, complete.
-- Run: psql "$DATABASE_URL" -f examples/psql/diamond.sql
\set ON_ERROR_STOP on

select pgflow.create_flow('psql_diamond');
select step_slug from pgflow.add_step('psql_diamond', 'a');
select step_slug from pgflow.add_step('psql_diamond', 'b', array['a']);
select step_slug from pgflow.add_step('psql_diamond', 'c', array['a']);
select step_slug from pgflow.add_step('psql_diamond', 'd', array['b', 'c']);

-- start_tasks records which worker took a task, so a worker row must exist first.
insert into pgflow.workers (worker_id, queue_name, function_name)
values ('00000000-0000-4000-8000-00000000d1a0', 'psql_diamond', 'psql')
on conflict (worker_id) do update set last_heartbeat_at = now();

select run_id from pgflow.start_flow('psql_diamond', '{"n": 5}') \gset

do $$
declare
  t pgflow.step_task_record;
  handled int;
begin
  loop
    handled := 0;
    for t in
      select * from pgflow.start_tasks(
        'psql_diamond',
        (select coalesce(array_agg(msg_id), '{}') from pgmq.read('psql_diamond', 30, 10)),
        '00000000-0000-4000-8000-00000000d1a0')
    loop
      handled := handled + 1;
      perform pgflow.complete_task(t.run_id, t.step_slug, t.task_index,
        case t.step_slug
          when 'a' then to_jsonb((t.flow_input ->> 'n')::int * 2)            -- 10
          when 'b' then to_jsonb((t.input ->> 'a')::int + 1)                 -- 11
          when 'c' then to_jsonb((t.input ->> 'a')::int * 3)                 -- 30
          when 'd' then to_jsonb((t.input ->> 'b')::int + (t.input ->> 'c')::int)  -- 41
        end);
    end loop;
    exit when handled = 0;
  end loop;
end $$;

select status, output from pgflow.runs where run_id = :'run_id';

-- The worker row above was this script playing a worker: mark it stopped, so `pgflow workers`
-- and the dashboard list it as stopped rather than as a stale (crashed) worker.
select pgflow.mark_worker_stopped('00000000-0000-4000-8000-00000000d1a0');
