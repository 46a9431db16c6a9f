-- replaceable
-- View pgflow.run_usage (pgflow-rs extension): pgflow.step_usage summed per run.
create or replace view pgflow.run_usage as
select s.run_id,
       s.flow_slug,
       sum(s.calls)::bigint as calls,
       sum(s.abandoned_calls)::bigint as abandoned_calls,
       sum(s.input_tokens)::bigint as input_tokens,
       sum(s.output_tokens)::bigint as output_tokens,
       sum(s.cost_usd) as cost_usd,
       sum(s.latency_ms)::bigint as latency_ms
  from pgflow.step_usage s
 group by s.run_id, s.flow_slug;
