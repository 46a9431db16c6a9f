-- A failed attempt with attempts left is queued again, visible after base_delay * 2^attempts.
begin;
select plan(3);

select pgflow.create_flow('pt_retry', max_attempts => 3, base_delay => 3);
select pgflow.add_step('pt_retry', 'flaky');
insert into pgflow.workers (worker_id, queue_name, function_name)
values ('11111111-1111-1111-1111-111111111111', 'pt_retry', 'pgtap');
select run_id as run from pgflow.start_flow('pt_retry', '{}') \gset
select pgflow.start_tasks('pt_retry', (select array_agg(msg_id) from pgmq.read('pt_retry', 5, 10)),
                          '11111111-1111-1111-1111-111111111111');

select is((select status from pgflow.fail_task(:'run', 'flaky', 0, 'boom')), 'queued', 'the task is queued again');
select ok(
  (select vt - clock_timestamp() between interval '5 seconds' and interval '7 seconds' from pgmq.q_pt_retry),
  'the retry waits 3 * 2^1 = 6 seconds');
select is((select error_message from pgflow.step_tasks), 'boom', 'the error is kept');

select * from finish();
rollback;
