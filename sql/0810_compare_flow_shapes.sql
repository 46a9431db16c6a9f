-- replaceable
-- pgflow._compare_flow_shapes: the structural differences between two shapes, one sentence
-- each (empty array when equal): the step count first, then per index the missing step, or
-- each differing field (slug, type, dependencies, whenUnmet, whenExhausted, patterns).
-- Options are never compared. Templates match upstream word for word.
create or replace function pgflow._compare_flow_shapes(p_local jsonb, p_db jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_diffs text[] := '{}';
  v_local jsonb := coalesce(p_local -> 'steps', '[]'::jsonb);
  v_db jsonb := coalesce(p_db -> 'steps', '[]'::jsonb);
  v_local_n int := jsonb_array_length(coalesce(p_local -> 'steps', '[]'::jsonb));
  v_db_n int := jsonb_array_length(coalesce(p_db -> 'steps', '[]'::jsonb));
  a jsonb;
  b jsonb;
  v_field text;
  v_label text;
begin
  if v_local_n <> v_db_n then
    v_diffs := v_diffs || format('Step count differs: %s vs %s', v_local_n, v_db_n);
  end if;

  for i in 0 .. greatest(v_local_n, v_db_n) - 1 loop
    a := v_local -> i;
    b := v_db -> i;
    if a is null then
      v_diffs := v_diffs || format('Step at index %s: missing in first shape (second has ''%s'')', i, b ->> 'slug');
      continue;
    end if;
    if b is null then
      v_diffs := v_diffs || format('Step at index %s: missing in second shape (first has ''%s'')', i, a ->> 'slug');
      continue;
    end if;

    if (a ->> 'slug') is distinct from (b ->> 'slug') then
      v_diffs := v_diffs || format('Step at index %s: slug differs ''%s'' vs ''%s''', i, a ->> 'slug', b ->> 'slug');
    end if;
    if (a ->> 'stepType') is distinct from (b ->> 'stepType') then
      v_diffs := v_diffs || format('Step at index %s: type differs ''%s'' vs ''%s''', i, a ->> 'stepType', b ->> 'stepType');
    end if;
    if (select coalesce(array_agg(x order by x), '{}') from jsonb_array_elements_text(coalesce(a -> 'dependencies', '[]')) x)
       is distinct from
       (select coalesce(array_agg(x order by x), '{}') from jsonb_array_elements_text(coalesce(b -> 'dependencies', '[]')) x) then
      v_diffs := v_diffs || format('Step at index %s: dependencies differ [%s] vs [%s]', i,
        (select coalesce(string_agg(x, ', ' order by x), '') from jsonb_array_elements_text(coalesce(a -> 'dependencies', '[]')) x),
        (select coalesce(string_agg(x, ', ' order by x), '') from jsonb_array_elements_text(coalesce(b -> 'dependencies', '[]')) x));
    end if;
    foreach v_field in array array['whenUnmet', 'whenExhausted'] loop
      if a ? v_field and b ? v_field and (a ->> v_field) is distinct from (b ->> v_field) then
        v_diffs := v_diffs || format('Step at index %s: %s differs ''%s'' vs ''%s''', i, v_field, a ->> v_field, b ->> v_field);
      end if;
    end loop;
    foreach v_field in array array['requiredInputPattern', 'forbiddenInputPattern'] loop
      if (a -> v_field) is distinct from (b -> v_field) then
        v_diffs := v_diffs || format('Step at index %s: %s differs ''%s'' vs ''%s''', i, v_field, a -> v_field, b -> v_field);
      end if;
    end loop;
  end loop;

  return v_diffs;
end;
$$;
