-- replaceable
-- pgflow._worker_task_records: extends started tasks' records (pgflow.step_task_record) with
-- their attempt number and their step's effective settings (see pgflow.worker_task_record).
-- Must run in a statement after the one that started the tasks, so it sees their new
-- attempts_count. retry_delay is calculate_retry_delay of the effective base delay, exactly
-- what fail_task applies after this attempt (unless the options change meanwhile).
create or replace function pgflow._worker_task_records(p_flow_slug text, p_tasks pgflow.step_task_record[])
returns setof pgflow.worker_task_record
language sql
stable
set search_path = ''
as $$
  select r.flow_slug, r.run_id, r.step_slug, r.input, r.msg_id, r.task_index, r.flow_input,
         t.attempts_count,
         coalesce(s.opt_max_attempts, f.opt_max_attempts),
         coalesce(s.opt_timeout, f.opt_timeout),
         coalesce(s.opt_base_delay, f.opt_base_delay),
         pgflow.calculate_retry_delay(coalesce(s.opt_base_delay, f.opt_base_delay), t.attempts_count)
    from unnest(p_tasks) r
    join pgflow.step_tasks t
      on t.run_id = r.run_id and t.step_slug = r.step_slug and t.task_index = r.task_index
    join pgflow.steps s on s.flow_slug = p_flow_slug and s.step_slug = r.step_slug
    join pgflow.flows f on f.flow_slug = p_flow_slug
   order by r.msg_id;
$$;
revoke execute on function pgflow._worker_task_records(text, pgflow.step_task_record[]) from public;
