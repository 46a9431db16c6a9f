-- replaceable
-- pgflow._ensure_flow_compiled_limited (pgflow-rs addition): what ensure_flow_compiled does
-- for a caller that may not define flows (e.g. the worker role): it verifies the stored
-- shape, and creates a missing flow only when the operator set
-- pgflow.config.workers_may_compile. It never deletes or recompiles a flow, whatever
-- allow_data_loss says, and reads no session setting (pgflow.is_local and the Supabase JWT
-- secret can be SET by any session): it is SECURITY DEFINER, so only the config table, which
-- the owner alone can change, decides. Returns {"status", "differences"} like
-- ensure_flow_compiled (compiled, verified or mismatch); refusals raise with the reason.
create or replace function pgflow._ensure_flow_compiled_limited(flow_slug text, shape jsonb, allow_data_loss boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_differences text[];
begin
  perform pgflow._advisory_xact_lock(1, hashtext(_ensure_flow_compiled_limited.flow_slug),
    format('flow %L for compiling', _ensure_flow_compiled_limited.flow_slug));

  if not exists (select 1 from pgflow.flows f where f.flow_slug = _ensure_flow_compiled_limited.flow_slug) then
    if not coalesce((select c.workers_may_compile from pgflow.config c), false) then
      raise exception 'flow "%" is not defined, and this role may not define flows', _ensure_flow_compiled_limited.flow_slug
        using errcode = '42501',
              hint = 'Define it with the role that owns pgflow (e.g. `pgflow flow add FILE`), or let workers create missing flows: UPDATE pgflow.config SET workers_may_compile = true.';
    end if;
    perform pgflow._create_flow_from_shape(_ensure_flow_compiled_limited.flow_slug, shape);
    return jsonb_build_object('status', 'compiled', 'differences', '[]'::jsonb);
  end if;

  v_differences := pgflow._compare_flow_shapes(shape, pgflow._get_flow_shape(_ensure_flow_compiled_limited.flow_slug));
  if cardinality(v_differences) = 0 then
    return jsonb_build_object('status', 'verified', 'differences', '[]'::jsonb);
  end if;

  if coalesce(allow_data_loss, false) then
    raise exception 'flow "%" differs from the stored one, and this role may not delete or recompile flows: %',
      _ensure_flow_compiled_limited.flow_slug, array_to_string(v_differences, '; ')
      using errcode = '42501',
            hint = 'Recompile it with the role that owns pgflow (e.g. `pgflow flow add FILE --allow-data-loss`).';
  end if;
  return jsonb_build_object('status', 'mismatch', 'differences', to_jsonb(v_differences));
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead: to setup_roles' worker role, and on upgrade to every role that could
-- already call ensure_flow_compiled (which now hands such roles over to this function).
revoke execute on function pgflow._ensure_flow_compiled_limited(text, jsonb, boolean) from public;
do $$
declare
  v_role text;
begin
  for v_role in
    select distinct a.grantee::regrole::text
      from pg_catalog.pg_proc p, aclexplode(p.proacl) a
     where p.oid = 'pgflow.ensure_flow_compiled(text, jsonb, boolean)'::regprocedure
       and a.privilege_type = 'EXECUTE' and a.grantee <> 0 and a.grantee <> p.proowner
  loop
    execute format('grant execute on function pgflow._ensure_flow_compiled_limited(text, jsonb, boolean) to %s', v_role);
  end loop;
end;
$$;
