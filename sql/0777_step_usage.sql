-- replaceable
-- View pgflow.step_usage (pgflow-rs extension): metered calls summed per run and step.
-- `calls`, tokens, cost and latency count every recorded call (what was spent);
-- `abandoned_calls` are those of attempts that did not complete the task (failed, retried,
-- or abandoned by a killed worker), so they are never mistaken for the completing attempt's.
-- Cost uses the price recorded with the call, else today's price (NULL when neither).
create or replace view pgflow.step_usage as
select u.run_id,
       u.flow_slug,
       u.step_slug,
       count(*) as calls,
       count(*) filter (where t.status is distinct from 'completed' or u.attempt <> t.attempts_count)
         as abandoned_calls,
       coalesce(sum(u.input_tokens), 0)::bigint as input_tokens,
       coalesce(sum(u.output_tokens), 0)::bigint as output_tokens,
       sum(coalesce(u.cost_usd, pgflow._model_cost(u.model, u.input_tokens, u.output_tokens)))
         as cost_usd,
       sum(u.latency_ms)::bigint as latency_ms,
       array_agg(distinct u.model order by u.model) as models
  from pgflow.task_usage u
  left join pgflow.step_tasks t
    on t.run_id = u.run_id and t.step_slug = u.step_slug and t.task_index = u.task_index
 group by u.run_id, u.flow_slug, u.step_slug;
