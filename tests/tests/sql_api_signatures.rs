//! The public SQL API keeps upstream pgflow 0.14's exact names, argument names, defaults and
//! return types (SPEC.md §3), so flows and queries written for pgflow work here unchanged.
//! The functions a worker calls are SECURITY DEFINER here (upstream: invoker) so that a
//! least-privileged worker role needs only EXECUTE on them (see sql_privileges.rs).
//! `ensure_flow_compiled` stays invoker, as upstream: for the worker role it hands over to
//! the SECURITY DEFINER `_ensure_flow_compiled_limited`, which never deletes a flow.

use pgflow_tests::TestDb;

const EXPECTED: &[&str] = &[
    "_archive_task_message(p_run_id uuid, p_step_slug text, p_task_index integer) -> void",
    "_cascade_force_skip_steps(run_id uuid, step_slug text, skip_reason text) -> integer",
    "_compare_flow_shapes(p_local jsonb, p_db jsonb) -> text[]",
    "_create_flow_from_shape(p_flow_slug text, p_shape jsonb) -> void",
    "_get_flow_shape(p_flow_slug text) -> jsonb",
    "add_step(flow_slug text, step_slug text, deps_slugs text[] DEFAULT '{}'::text[], max_attempts integer DEFAULT NULL::integer, base_delay integer DEFAULT NULL::integer, timeout integer DEFAULT NULL::integer, start_delay integer DEFAULT NULL::integer, step_type text DEFAULT 'single'::text, required_input_pattern jsonb DEFAULT NULL::jsonb, forbidden_input_pattern jsonb DEFAULT NULL::jsonb, when_unmet text DEFAULT 'skip'::text, when_exhausted text DEFAULT 'fail'::text) -> pgflow.steps",
    "calculate_retry_delay(base_delay numeric, attempts_count integer) -> integer",
    "cascade_complete_taskless_steps(run_id uuid) -> integer",
    "cascade_resolve_conditions(run_id uuid) -> boolean",
    "complete_task(run_id uuid, step_slug text, task_index integer, output jsonb) -> SETOF pgflow.step_tasks [security definer]",
    "create_flow(flow_slug text, max_attempts integer DEFAULT NULL::integer, base_delay integer DEFAULT NULL::integer, timeout integer DEFAULT NULL::integer) -> pgflow.flows",
    "delete_flow_and_data(p_flow_slug text) -> void",
    "ensure_flow_compiled(flow_slug text, shape jsonb, allow_data_loss boolean DEFAULT false) -> jsonb",
    "fail_task(run_id uuid, step_slug text, task_index integer, error_message text) -> SETOF pgflow.step_tasks [security definer]",
    "get_run_with_states(run_id uuid) -> jsonb [security definer]",
    "is_local() -> boolean",
    "is_valid_slug(slug text) -> boolean",
    "mark_worker_stopped(worker_id uuid) -> void [security definer]",
    "maybe_complete_run(run_id uuid) -> void",
    "poll_for_tasks(queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100) -> SETOF pgflow.step_task_record",
    "prune_data_older_than(retention_interval interval) -> void",
    "requeue_stalled_tasks() -> integer [security definer]",
    "set_vt_batch(queue_name text, msg_ids bigint[], vt_offsets integer[]) -> TABLE(msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, vt timestamp with time zone, message jsonb, headers jsonb)",
    "start_flow(flow_slug text, input jsonb, run_id uuid DEFAULT NULL::uuid) -> SETOF pgflow.runs",
    "start_flow_with_states(flow_slug text, input jsonb, run_id uuid DEFAULT NULL::uuid) -> jsonb [security definer]",
    "start_ready_steps(run_id uuid) -> void",
    "start_tasks(flow_slug text, msg_ids bigint[], worker_id uuid) -> SETOF pgflow.step_task_record [security definer]",
    // pgflow-rs extensions.
    "apply_flow_options(flow_slug text, shape jsonb) -> jsonb",
    "cancel_run(run_id uuid) -> boolean",
    "claim_tasks(flow_slug text, worker_id uuid, claim_id uuid, qty integer, vt integer DEFAULT 30) -> SETOF pgflow.worker_task_record [security definer]",
    "complete_tasks(completions jsonb) -> SETOF pgflow.step_tasks [security definer]",
    "emit_event(event text, payload jsonb) -> void",
    "read_with_poll(queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100) -> SETOF pgmq.message_record [security definer]",
    "retry_run(run_id uuid) -> boolean",
    "set_worker_dead_after(worker_id uuid, dead_after interval) -> void [security definer]",
    "start_worker_tasks(flow_slug text, msg_ids bigint[], worker_id uuid) -> SETOF pgflow.worker_task_record [security definer]",
    "set_step_handler(flow_slug text, step_slug text, spec jsonb) -> jsonb",
    "record_task_usage(run_id uuid, step_slug text, task_index integer, worker_id uuid, model text, input_tokens bigint, output_tokens bigint, latency_ms bigint) -> bigint [security definer]",
    "task_attempt(run_id uuid, step_slug text, task_index integer) -> integer [security definer]",
    "postpone_task_retry(run_id uuid, step_slug text, task_index integer, delay_seconds integer) -> boolean [security definer]",
    "set_realtime_send(enabled boolean) -> boolean",
    "setup_roles(worker_role text DEFAULT 'pgflow_worker'::text, reader_role text DEFAULT 'pgflow_reader'::text) -> void",
];

#[tokio::test]
async fn every_spec_function_exists_with_its_exact_signature() {
    let db = TestDb::new().await;
    let found: Vec<String> = sqlx::query_scalar(
        "select p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
                || case when p.prosecdef then ' [security definer]' else '' end
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'pgflow'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for want in EXPECTED {
        assert!(
            found.iter().any(|f| f == want),
            "missing or different: {want}\nfound:\n{}",
            found.join("\n")
        );
    }
}

#[tokio::test]
async fn every_function_pins_an_empty_search_path() {
    let db = TestDb::new().await;
    let unpinned: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'pgflow' and not coalesce(p.proconfig @> array['search_path=\"\"'], false)",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(
        unpinned.is_empty(),
        "functions without search_path = '': {unpinned:?}"
    );
}

#[tokio::test]
async fn tables_and_the_task_record_type_have_upstream_columns() {
    let db = TestDb::new().await;
    let expected = [
        ("flows", "flow_slug,opt_max_attempts,opt_base_delay,opt_timeout,created_at"),
        ("steps", "flow_slug,step_slug,step_type,step_index,deps_count,opt_max_attempts,opt_base_delay,opt_timeout,opt_start_delay,required_input_pattern,forbidden_input_pattern,when_unmet,when_exhausted,created_at"),
        ("deps", "flow_slug,dep_slug,step_slug,created_at"),
        ("runs", "run_id,flow_slug,status,input,output,remaining_steps,started_at,completed_at,failed_at,cancelled_at"),
        ("step_states", "flow_slug,run_id,step_slug,status,remaining_tasks,initial_tasks,remaining_deps,output,error_message,skip_reason,created_at,started_at,completed_at,failed_at,skipped_at,cancelled_at"),
        ("step_tasks", "flow_slug,run_id,step_slug,message_id,task_index,status,attempts_count,error_message,output,queued_at,started_at,completed_at,failed_at,last_worker_id,requeued_count,last_requeued_at,permanently_stalled_at,last_claim_id"),
        ("workers", "worker_id,queue_name,function_name,started_at,deprecated_at,stopped_at,last_heartbeat_at"),
        ("step_task_record", "flow_slug,run_id,step_slug,input,msg_id,task_index,flow_input"),
    ];
    for (table, columns) in expected {
        let got: String = sqlx::query_scalar(
            "select string_agg(a.attname, ',' order by a.attnum)
               from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'pgflow' and c.relname = $1 and a.attnum > 0 and not a.attisdropped",
        )
        .bind(table)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(got, columns, "columns of pgflow.{table}");
    }
}
