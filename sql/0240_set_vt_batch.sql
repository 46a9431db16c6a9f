-- replaceable
-- pgflow.set_vt_batch: in one UPDATE, sets each message's visibility timeout to
-- clock_timestamp() + its own offset (seconds) and returns the updated messages.
-- Empty result when either array is NULL or msg_ids is empty; arrays of different lengths
-- are refused; an unknown queue raises undefined_table (42P01).
create or replace function pgflow.set_vt_batch(queue_name text, msg_ids bigint[], vt_offsets integer[])
returns table (msg_id bigint, read_ct integer, enqueued_at timestamptz, vt timestamptz, message jsonb, headers jsonb)
language plpgsql
set search_path = ''
as $$
begin
  if msg_ids is null or vt_offsets is null or cardinality(msg_ids) = 0 then
    return;
  end if;
  if cardinality(msg_ids) <> cardinality(vt_offsets) then
    raise exception 'msg_ids length (%) must equal vt_offsets length (%)',
      cardinality(msg_ids), cardinality(vt_offsets);
  end if;
  return query execute format(
    $q$
    update pgmq.%I q
       set vt = clock_timestamp() + make_interval(secs => o.off)
      from unnest($1, $2) as o(id, off)
     where q.msg_id = o.id
    returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    $q$,
    pgmq.format_table_name(queue_name, 'q')
  ) using msg_ids, vt_offsets;
end;
$$;
