-- replaceable
-- View pgflow.active_tasks: started tasks with the worker running them, the attempt number,
-- how long ago they started and whether the sweeper parked them (permanently stalled).
create or replace view pgflow.active_tasks as
select t.run_id,
       t.flow_slug,
       t.step_slug,
       t.task_index,
       t.attempts_count as attempt,
       t.last_worker_id as worker_id,
       w.last_heartbeat_at as worker_heartbeat_at,
       t.started_at,
       now() - t.started_at as running_for,
       t.requeued_count,
       t.permanently_stalled_at is not null as permanently_stalled
  from pgflow.step_tasks t
  left join pgflow.workers w on w.worker_id = t.last_worker_id
 where t.status = 'started';
