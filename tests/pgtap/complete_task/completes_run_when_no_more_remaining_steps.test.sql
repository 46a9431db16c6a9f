-- Completing the last task completes the step and the run, with the leaf outputs as run output.
begin;
select plan(4);

select pgflow.create_flow('pt_done');
select pgflow.add_step('pt_done', 'first');
select pgflow.add_step('pt_done', 'last', array['first']);
insert into pgflow.workers (worker_id, queue_name, function_name)
values ('11111111-1111-1111-1111-111111111111', 'pt_done', 'pgtap');
select run_id as run from pgflow.start_flow('pt_done', '{}') \gset

select pgflow.start_tasks('pt_done', (select array_agg(msg_id) from pgmq.read('pt_done', 5, 10)),
                          '11111111-1111-1111-1111-111111111111');
select pgflow.complete_task(:'run', 'first', 0, '"a"');
select is((select remaining_steps from pgflow.runs), 1, 'one step remains');

select pgflow.start_tasks('pt_done', (select array_agg(msg_id) from pgmq.read('pt_done', 5, 10)),
                          '11111111-1111-1111-1111-111111111111');
select pgflow.complete_task(:'run', 'last', 0, '{"b": 2}');
select is((select status from pgflow.runs), 'completed', 'the run is completed');
select is((select output from pgflow.runs), '{"last": {"b": 2}}'::jsonb, 'the run output holds the leaf');
select is((select count(*)::int from pgmq.q_pt_done), 0, 'every message is archived');

select * from finish();
rollback;
