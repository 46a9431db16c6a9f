-- replaceable
-- pgflow.set_step_handler (pgflow-rs extension): stores, replaces or (with a NULL spec)
-- removes the built-in handler spec of a step. For the schema owner (not granted to the
-- worker role). Checks what SQL can: the step exists, the spec is an object with a string
-- `kind`, and it holds no API key (keys live in the worker's environment, named by
-- `api_key_env`). Errors name the flow, the step and the field; a refused call stores
-- nothing. Kind-specific fields are validated by `pgflow flow add` and by `pgflow worker`
-- at start-up. Returns the stored spec (NULL when removed).
create or replace function pgflow.set_step_handler(flow_slug text, step_slug text, spec jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_where text := format('flow "%s", step "%s"', set_step_handler.flow_slug, set_step_handler.step_slug);
  v_key text;
begin
  if not exists (select 1 from pgflow.steps s
                  where s.flow_slug = set_step_handler.flow_slug
                    and s.step_slug = set_step_handler.step_slug) then
    raise exception '%: no such step', v_where
      using errcode = 'foreign_key_violation',
            hint = 'register the flow first (pgflow flow add, or pgflow.create_flow and pgflow.add_step)';
  end if;

  if spec is null or spec = 'null'::jsonb then
    delete from pgflow.step_handlers h
     where h.flow_slug = set_step_handler.flow_slug and h.step_slug = set_step_handler.step_slug;
    return null;
  end if;

  if jsonb_typeof(spec) <> 'object' then
    raise exception '%: handler: expected an object with a "kind" field, got %', v_where, jsonb_typeof(spec)
      using errcode = 'check_violation';
  end if;
  if spec -> 'kind' is null or jsonb_typeof(spec -> 'kind') = 'null' then
    raise exception '%: handler.kind: missing; one of: exec, http, llm, template, transform', v_where
      using errcode = 'check_violation';
  end if;
  if jsonb_typeof(spec -> 'kind') <> 'string' or length(spec ->> 'kind') = 0 then
    raise exception '%: handler.kind: expected a non-empty string', v_where
      using errcode = 'check_violation';
  end if;
  select k into v_key from jsonb_object_keys(spec) k where lower(k) in ('api_key', 'apikey') limit 1;
  if v_key is not null then
    raise exception '%: handler.%: API keys are never stored in a flow', v_where, v_key
      using errcode = 'check_violation',
            hint = 'put the key in an environment variable of the worker and name that variable in handler.api_key_env';
  end if;

  insert into pgflow.step_handlers as h (flow_slug, step_slug, spec)
  values (set_step_handler.flow_slug, set_step_handler.step_slug, spec)
  on conflict on constraint step_handlers_pkey
  do update set spec = excluded.spec, updated_at = now()
   where h.spec is distinct from excluded.spec;
  return spec;
end;
$$;
