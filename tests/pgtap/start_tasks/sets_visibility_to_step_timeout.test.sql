-- start_tasks moves a started message's visibility to the step's timeout + 2 s (SPEC §3.4 quirk fixed).
begin;
select plan(3);

select pgflow.create_flow('pt_vt', timeout => 60);
select pgflow.add_step('pt_vt', 'slow', timeout => 120);
insert into pgflow.workers (worker_id, queue_name, function_name)
values ('11111111-1111-1111-1111-111111111111', 'pt_vt', 'pgtap');
select pgflow.start_flow('pt_vt', '{}');

select is(
  (select count(*)::int from pgflow.start_tasks('pt_vt',
     (select array_agg(msg_id) from pgmq.read('pt_vt', 5, 10)),
     '11111111-1111-1111-1111-111111111111')),
  1, 'the task is started');
select ok(
  (select vt - clock_timestamp() between interval '119 seconds' and interval '123 seconds' from pgmq.q_pt_vt),
  'visibility is the step timeout plus 2 seconds');
select is(
  (select count(*)::int from pgmq.read('pt_vt', 5, 10)), 0,
  'no other worker can read the message while the handler runs');

select * from finish();
rollback;
