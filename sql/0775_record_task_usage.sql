-- replaceable
-- pgflow.record_task_usage (pgflow-rs extension): records one metered call of the current
-- attempt of a task (workers call it; SECURITY DEFINER, see pgflow.setup_roles). The attempt
-- number is read from the task, and the cost priced from pgflow.model_prices now. Only a task
-- that is started by `worker_id` records anything, so a late report from a worker whose
-- attempt was requeued (and maybe started again by another worker) cannot be counted against
-- the attempt that replaced it. Returns the usage row id, or NULL when nothing was recorded.
create or replace function pgflow.record_task_usage(
  run_id uuid,
  step_slug text,
  task_index int,
  worker_id uuid,
  model text,
  input_tokens bigint,
  output_tokens bigint,
  latency_ms bigint
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_task pgflow.step_tasks;
  v_id bigint;
begin
  if model is null or length(model) = 0 then
    raise exception 'record_task_usage: model must not be empty' using errcode = 'check_violation';
  end if;
  select * into v_task from pgflow.step_tasks t
   where t.run_id = record_task_usage.run_id and t.step_slug = record_task_usage.step_slug
     and t.task_index = record_task_usage.task_index;
  if v_task.run_id is null or v_task.status <> 'started'
     or v_task.last_worker_id is distinct from record_task_usage.worker_id then
    return null;
  end if;
  insert into pgflow.task_usage (run_id, flow_slug, step_slug, task_index, attempt, model,
                                 input_tokens, output_tokens, cost_usd, latency_ms)
  values (v_task.run_id, v_task.flow_slug, v_task.step_slug, v_task.task_index, v_task.attempts_count,
          model, input_tokens, output_tokens,
          pgflow._model_cost(model, input_tokens, output_tokens), greatest(latency_ms, 0))
  returning usage_id into v_id;
  return v_id;
end;
$$;
