-- replaceable
-- pgflow.requeue_stalled_tasks: crash recovery for tasks whose worker went away. A started
-- task is stalled when its step's timeout (the flow's when the step has none) plus 30 s has
-- passed since it started, or, sooner, when the worker that started it has stopped or has
-- not sent a heartbeat for pgflow.config.dead_worker_after (default 15 seconds, at least
-- 1 second; a session setting is ignored, since any caller could SET it), or for longer
-- when the worker asked for more grace (pgflow.worker_dead_after). A stalled task
-- goes back to queued with its message visible at once, up to 3 requeues; after that it is
-- parked (permanently_stalled_at set, message archived, task left started) for an operator.
-- attempts_count is untouched. SKIP LOCKED, so any number of sweepers may run at once.
-- Returns the number of tasks requeued.
create or replace function pgflow.requeue_stalled_tasks()
returns int
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_dead_after interval := greatest(coalesce((select c.dead_worker_after from pgflow.config c),
                                             interval '15 seconds'), interval '1 second');
  v_task record;
  v_requeued int := 0;
begin
  for v_task in
    select t.run_id, t.step_slug, t.task_index, t.flow_slug, t.message_id, t.requeued_count
      from pgflow.step_tasks t
      join pgflow.steps s on s.flow_slug = t.flow_slug and s.step_slug = t.step_slug
      join pgflow.flows f on f.flow_slug = t.flow_slug
      left join pgflow.workers w on w.worker_id = t.last_worker_id
      left join pgflow.worker_dead_after wd on wd.worker_id = t.last_worker_id
     where t.status = 'started'
       and t.permanently_stalled_at is null
       and (
         t.started_at < now() - make_interval(secs => coalesce(s.opt_timeout, f.opt_timeout) + 30)
         or w.stopped_at is not null
         or w.last_heartbeat_at < now() - greatest(v_dead_after, coalesce(wd.dead_after, v_dead_after))
       )
     order by t.started_at
       for update of t skip locked
  loop
    if v_task.requeued_count < 3 then
      update pgflow.step_tasks t
         set status = 'queued', started_at = null, last_worker_id = null,
             requeued_count = t.requeued_count + 1, last_requeued_at = now()
       where t.run_id = v_task.run_id and t.step_slug = v_task.step_slug and t.task_index = v_task.task_index;
      if v_task.message_id is not null then
        perform pgmq.set_vt(v_task.flow_slug, v_task.message_id, 0);
      end if;
      perform pg_notify('pgflow_tasks', v_task.flow_slug);
      v_requeued := v_requeued + 1;
    else
      update pgflow.step_tasks t
         set permanently_stalled_at = now()
       where t.run_id = v_task.run_id and t.step_slug = v_task.step_slug and t.task_index = v_task.task_index;
      if v_task.message_id is not null then
        perform pgmq.archive(v_task.flow_slug, v_task.message_id);
      end if;
    end if;
  end loop;
  return v_requeued;
end;
$$;
