-- A 1,000-element map flow (square each number, then sum) defined and run with nothing but
-- psql and the pgflow SQL API. The DO block plays the worker, 100 messages at a time.
-- Run: psql "$DATABASE_URL" -f examples/psql/map.sql
\set ON_ERROR_STOP on

select pgflow.create_flow('psql_map');
select step_slug from pgflow.add_step('psql_map', 'square', step_type => 'map');
select step_slug from pgflow.add_step('psql_map', 'total', array['square']);

insert into pgflow.workers (worker_id, queue_name, function_name)
values ('00000000-0000-4000-8000-0000000aa900', 'psql_map', 'psql')
on conflict (worker_id) do update set last_heartbeat_at = now();

select run_id from pgflow.start_flow('psql_map', (select jsonb_agg(i) from generate_series(1, 1000) i)) \gset

do $$
declare
  t pgflow.step_task_record;
  handled int;
begin
  loop
    handled := 0;
    for t in
      select * from pgflow.start_tasks(
        'psql_map',
        (select coalesce(array_agg(msg_id), '{}') from pgmq.read('psql_map', 30, 100)),
        '00000000-0000-4000-8000-0000000aa900')
    loop
      handled := handled + 1;
      perform pgflow.complete_task(t.run_id, t.step_slug, t.task_index,
        case t.step_slug
          when 'square' then to_jsonb((t.input #>> '{}')::bigint ^ 2)
          when 'total' then (select to_jsonb(sum(x::bigint)) from jsonb_array_elements_text(t.input -> 'square') x)
        end);
    end loop;
    exit when handled = 0;
  end loop;
end $$;

select status, output, (select count(*) from pgflow.step_tasks where run_id = :'run_id') as tasks
  from pgflow.runs where run_id = :'run_id';

-- The worker row above was this script playing a worker: mark it stopped, so `pgflow workers`
-- and the dashboard list it as stopped rather than as a stale (crashed) worker.
select pgflow.mark_worker_stopped('00000000-0000-4000-8000-0000000aa900');
