-- replaceable
-- pgflow.ensure_flow_compiled: makes the stored flow match a worker's definition, under a
-- per-flow advisory lock so racing workers compile once (waiting at most 30 s, then an error
-- names the session holding it). Returns {"status", "differences"}:
-- compiled (flow was missing), verified (same shape), recompiled (shape differed and data loss
-- was allowed, or pgflow.is_local(): the flow and all its runs were deleted and recreated),
-- mismatch (shape differed: nothing changed, the caller must refuse to run). Options are
-- never compared; tune them with UPDATE.
-- SECURITY INVOKER, as upstream: a caller that may define flows (INSERT and DELETE on
-- pgflow.flows, e.g. the owner) gets upstream's behaviour with its own privileges, including
-- the session-level pgflow.is_local() switch. Any other caller (the worker role) is handed to
-- _ensure_flow_compiled_limited, which only verifies (or creates a missing flow when the
-- operator allows it) and never deletes.
create or replace function pgflow.ensure_flow_compiled(flow_slug text, shape jsonb, allow_data_loss boolean default false)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_differences text[];
begin
  if not (has_table_privilege('pgflow.flows', 'INSERT') and has_table_privilege('pgflow.flows', 'DELETE')) then
    return pgflow._ensure_flow_compiled_limited(ensure_flow_compiled.flow_slug, shape, allow_data_loss);
  end if;

  perform pgflow._advisory_xact_lock(1, hashtext(ensure_flow_compiled.flow_slug),
    format('flow %L for compiling', ensure_flow_compiled.flow_slug));

  if not exists (select 1 from pgflow.flows f where f.flow_slug = ensure_flow_compiled.flow_slug) then
    perform pgflow._create_flow_from_shape(ensure_flow_compiled.flow_slug, shape);
    return jsonb_build_object('status', 'compiled', 'differences', '[]'::jsonb);
  end if;

  v_differences := pgflow._compare_flow_shapes(shape, pgflow._get_flow_shape(ensure_flow_compiled.flow_slug));
  if cardinality(v_differences) = 0 then
    return jsonb_build_object('status', 'verified', 'differences', '[]'::jsonb);
  end if;

  if coalesce(allow_data_loss, false) or pgflow.is_local() then
    perform pgflow.delete_flow_and_data(ensure_flow_compiled.flow_slug);
    perform pgflow._create_flow_from_shape(ensure_flow_compiled.flow_slug, shape);
    return jsonb_build_object('status', 'recompiled', 'differences', to_jsonb(v_differences));
  end if;

  return jsonb_build_object('status', 'mismatch', 'differences', to_jsonb(v_differences));
end;
$$;
