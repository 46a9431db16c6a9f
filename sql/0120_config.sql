-- Table pgflow.config (pgflow-rs addition): the one row of operator settings that the
-- SECURITY DEFINER functions obey. They never read session settings (SET pgflow.x), since
-- any caller, including a worker role, can set those in its own session. Only the table's
-- owner (the role that installed pgflow) may change it; the reader role may read it.
--   realtime_send: also broadcast every event through Supabase's realtime.send. Set at
--     install when a trusted realtime.send (see _realtime_send_trusted) already exists,
--     or with `pgflow install --realtime`; re-checked before every call.
--   dead_worker_after: requeue_stalled_tasks treats a worker silent this long as dead.
--   max_payload_bytes: largest run input, task output or aggregated map output (as text).
--   max_error_chars: longer fail_task error messages are cut to this many characters.
--   max_map_width: most tasks one map step may fan out to in a run.
--   workers_may_compile: roles that may not define flows may still create a missing flow
--     through ensure_flow_compiled (never change or delete one).
create table pgflow.config (
  singleton           boolean primary key default true check (singleton),
  realtime_send       boolean not null default false,
  dead_worker_after   interval not null default interval '15 seconds'
                        constraint dead_worker_after_min check (dead_worker_after >= interval '1 second'),
  max_payload_bytes   bigint not null default 16777216
                        constraint max_payload_bytes_range check (max_payload_bytes between 1024 and 268435455),
  max_error_chars     int not null default 65536
                        constraint max_error_chars_min check (max_error_chars >= 256),
  max_map_width       int not null default 100000
                        constraint max_map_width_min check (max_map_width >= 1),
  workers_may_compile boolean not null default false
);

-- An install (or upgrade) keeps broadcasting to Supabase realtime only when the realtime
-- already there is trusted.
insert into pgflow.config (realtime_send) values (pgflow._realtime_send_trusted());
