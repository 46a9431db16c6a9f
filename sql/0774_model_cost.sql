-- replaceable
-- pgflow._model_cost: the cost in US dollars of a call to `p_model` from pgflow.model_prices
-- (exact name, or the longest priced name that the model's name extends with `-...`, such as a
-- dated variant). NULL when no price matches; missing token counts count as 0.
create or replace function pgflow._model_cost(p_model text, p_input_tokens bigint, p_output_tokens bigint)
returns numeric
language sql
stable
set search_path = ''
as $$
  select (coalesce(p_input_tokens, 0) * p.input_usd_per_million
          + coalesce(p_output_tokens, 0) * p.output_usd_per_million) / 1000000
    from pgflow.model_prices p
   where p.model = p_model or starts_with(p_model, p.model || '-')
   order by length(p.model) desc
   limit 1
$$;
