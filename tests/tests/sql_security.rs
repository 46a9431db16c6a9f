//! Attacks by ordinary roles, each shown to fail. Every test makes its own roles (named
//! after its database, so tests never share one) on a fresh install with `setup_roles()`,
//! performs the attack as that role, and checks the database is as it was.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Creates login role `<base>_<db>` (with `extra` options, e.g. ` in role pgflow_worker`)
/// and connects as it. Returns the role name and the pool.
async fn login(db: &TestDb, base: &str, extra: &str) -> (String, PgPool) {
    let user = format!("{base}_{}", db.name());
    exec(
        db.pool(),
        &format!("create role \"{user}\" login password 'pw'{extra}"),
    )
    .await;
    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(Some("pw")).unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url.as_str())
        .await
        .unwrap();
    (user, pool)
}

async fn is_superuser(pool: &PgPool, role: &str) -> bool {
    sqlx::query_scalar("select rolsuper from pg_roles where rolname = $1")
        .bind(role)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Plants, as `attacker`, a `realtime.send` that makes `attacker` superuser when it runs
/// as a superuser, and records every call.
async fn plant_realtime_send(attacker_pool: &PgPool, attacker: &str) {
    exec(
        attacker_pool,
        &format!(
            "create schema realtime;
             create table realtime.calls (as_role text);
             grant usage on schema realtime to public;
             grant insert on realtime.calls to public;
             create function realtime.send(payload jsonb, event text, topic text, private boolean)
             returns void language plpgsql as $f$
             begin
               insert into realtime.calls values (current_user);
               if (select rolsuper from pg_roles where rolname = current_user) then
                 execute 'alter role \"{attacker}\" superuser';
               end if;
             end $f$;
             grant execute on function realtime.send(jsonb, text, text, boolean) to public;"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_realtime_send_planted_by_a_database_creator_is_never_called() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('rt_attack'); select pgflow.add_step('rt_attack', 'a');",
    )
    .await;
    // Database owners hold CREATE on their database: enough to create a schema `realtime`.
    let (attacker, attacker_pool) = login(&db, "attacker", "").await;
    exec(
        admin,
        &format!(
            "grant create on database \"{}\" to \"{attacker}\"",
            db.name()
        ),
    )
    .await;
    plant_realtime_send(&attacker_pool, &attacker).await;

    // Events are emitted by the superuser's start_flow and by the worker's SECURITY
    // DEFINER calls (owned by the installing superuser).
    let run = start(admin, "rt_attack", json!({})).await;
    let (_, worker_pool) = login(&db, "w", " in role pgflow_worker").await;
    let w = worker(&worker_pool, "rt_attack").await;
    assert_eq!(drive(&worker_pool, "rt_attack", w, |_| json!(1)).await, 1);
    assert_eq!(run_status(admin, run).await, "completed");

    assert!(!is_superuser(admin, &attacker).await);
    assert_eq!(
        scalar_i64(admin, "select count(*) from realtime.calls").await,
        0
    );

    // Nor can the owner switch it on by mistake while that function is untrusted.
    let e = expect_error(admin, "select pgflow.set_realtime_send(true)").await;
    assert!(
        e.message.contains("cannot enable realtime") && e.message.contains("owned by a role"),
        "{e:?}"
    );
    assert_eq!(
        scalar_text(admin, "select realtime_send::text from pgflow.config").await,
        Some("false".into())
    );
}

#[tokio::test]
async fn realtime_send_is_rechecked_before_every_call() {
    let db = TestDb::new().await;
    let admin = db.pool();
    // A trusted stand-in for Supabase's realtime.send, made by the superuser.
    exec(
        admin,
        "create schema realtime;
         create table realtime.messages (topic text, event text);
         create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
         returns void language sql as $$ insert into realtime.messages values (topic, event) $$;
         select pgflow.create_flow('rt_check'); select pgflow.add_step('rt_check', 'a');",
    )
    .await;
    assert_eq!(
        scalar_text(admin, "select pgflow.set_realtime_send(true)::text").await,
        Some("true".into())
    );
    start(admin, "rt_check", json!({})).await;
    // run:started and step:a:started.
    assert_eq!(
        scalar_i64(admin, "select count(*) from realtime.messages").await,
        2
    );

    // Once another role owns it, it is no longer called, though the setting stays on.
    let (attacker, _pool) = login(&db, "attacker", "").await;
    exec(
        admin,
        &format!(
            "alter function realtime.send(jsonb, text, text, boolean) owner to \"{attacker}\""
        ),
    )
    .await;
    start(admin, "rt_check", json!({})).await;
    assert_eq!(
        scalar_i64(admin, "select count(*) from realtime.messages").await,
        2
    );
    exec(
        admin,
        &format!("alter function realtime.send(jsonb, text, text, boolean) owner to current_user; alter schema realtime owner to \"{attacker}\""),
    )
    .await;
    start(admin, "rt_check", json!({})).await;
    assert_eq!(
        scalar_i64(admin, "select count(*) from realtime.messages").await,
        2
    );
}

#[tokio::test]
async fn install_enables_realtime_only_for_a_trusted_realtime_send() {
    for (trusted, expected) in [(true, "true"), (false, "false")] {
        let db = TestDb::empty().await;
        if trusted {
            exec(db.pool(), "create schema realtime; create function realtime.send(jsonb, text, text, boolean) returns void language sql as '';").await;
        } else {
            let (attacker, attacker_pool) = login(&db, "attacker", "").await;
            exec(
                db.pool(),
                &format!(
                    "grant create on database \"{}\" to \"{attacker}\"",
                    db.name()
                ),
            )
            .await;
            plant_realtime_send(&attacker_pool, &attacker).await;
        }
        pgflow_db::install::install(db.url()).await.unwrap();
        assert_eq!(
            scalar_text(db.pool(), "select realtime_send::text from pgflow.config").await,
            Some(expected.into()),
            "trusted realtime.send: {trusted}"
        );
    }
}

#[tokio::test]
async fn public_can_execute_no_pgflow_function() {
    let db = TestDb::new().await;
    let open: Vec<String> = sqlx::query_scalar(
        "select p.oid::regprocedure::text
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'pgflow' and has_function_privilege('public', p.oid, 'execute')
          order by 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(open.is_empty(), "executable by PUBLIC: {open:?}");
}

fn one_step_shape(step: &str) -> serde_json::Value {
    json!({"steps": [
        {"slug": step, "stepType": "single", "dependencies": [], "whenUnmet": "skip", "whenExhausted": "fail",
         "requiredInputPattern": {"defined": false}, "forbiddenInputPattern": {"defined": false}}]})
}

async fn ensure_as(
    pool: &PgPool,
    slug: &str,
    shape: &serde_json::Value,
    allow_data_loss: bool,
) -> Result<serde_json::Value, SqlError> {
    sqlx::query_scalar("select pgflow.ensure_flow_compiled($1, $2, $3)")
        .bind(slug)
        .bind(shape)
        .bind(allow_data_loss)
        .fetch_one(pool)
        .await
        .map_err(sql_error)
}

#[tokio::test]
async fn the_worker_role_cannot_delete_or_define_flows_through_ensure_flow_compiled() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('victim'); select pgflow.add_step('victim', 'a');",
    )
    .await;
    let run = start(admin, "victim", json!({"keep": true})).await;
    let (_, worker_pool) = login(&db, "w", " in role pgflow_worker").await;
    let changed = one_step_shape("b");

    // allow_data_loss from a worker is refused, naming the reason.
    let e = ensure_as(&worker_pool, "victim", &changed, true)
        .await
        .unwrap_err();
    assert_eq!(e.code, "42501", "{e:?}");
    assert!(
        e.message.contains("may not delete or recompile flows"),
        "{e:?}"
    );
    let e = sqlx::query("select pgflow._ensure_flow_compiled_limited('victim', $1, true)")
        .bind(&changed)
        .execute(&worker_pool)
        .await
        .map_err(sql_error)
        .unwrap_err();
    assert_eq!(e.code, "42501", "{e:?}");

    // Session settings that mark a development database change nothing for a worker.
    let mut conn = worker_pool.acquire().await.unwrap();
    sqlx::raw_sql(
        "set pgflow.is_local = 'true';
         set app.settings.jwt_secret = 'super-secret-jwt-token-with-at-least-32-characters-long'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let r: serde_json::Value =
        sqlx::query_scalar("select pgflow.ensure_flow_compiled('victim', $1)")
            .bind(&changed)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(r["status"], json!("mismatch"));
    drop(conn);

    // Verifying the stored shape still works.
    let r = ensure_as(&worker_pool, "victim", &one_step_shape("a"), false)
        .await
        .unwrap();
    assert_eq!(r["status"], json!("verified"));

    // Defining a new flow needs the operator's consent.
    let e = ensure_as(&worker_pool, "newcomer", &changed, false)
        .await
        .unwrap_err();
    assert_eq!(e.code, "42501", "{e:?}");
    assert!(
        e.message.contains("is not defined") && e.message.contains("may not define flows"),
        "{e:?}"
    );
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.flows").await,
        1
    );
    assert_eq!(run_status(admin, run).await, "started");
    assert_eq!(
        scalar_i64(
            admin,
            "select count(*) from pgflow.step_tasks where step_slug = 'a'"
        )
        .await,
        1
    );

    exec(admin, "update pgflow.config set workers_may_compile = true").await;
    let r = ensure_as(&worker_pool, "newcomer", &changed, false)
        .await
        .unwrap();
    assert_eq!(r["status"], json!("compiled"));
    // Still no recompiling, even with compiling allowed.
    let e = ensure_as(&worker_pool, "victim", &changed, true)
        .await
        .unwrap_err();
    assert_eq!(e.code, "42501", "{e:?}");
    assert_eq!(run_status(admin, run).await, "started");
}

#[tokio::test]
async fn the_owner_keeps_upstream_compile_behaviour() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('mine'); select pgflow.add_step('mine', 'a');",
    )
    .await;
    start(admin, "mine", json!({})).await;
    let r = ensure_as(admin, "mine", &one_step_shape("b"), false)
        .await
        .unwrap();
    assert_eq!(r["status"], json!("mismatch"));
    let r = ensure_as(admin, "mine", &one_step_shape("b"), true)
        .await
        .unwrap();
    assert_eq!(r["status"], json!("recompiled"));
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.runs").await,
        0
    );
}

#[tokio::test]
async fn a_session_setting_cannot_make_requeue_stalled_tasks_take_healthy_tasks() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('busy'); select pgflow.add_step('busy', 'a');",
    )
    .await;
    start(admin, "busy", json!({})).await;
    let (_, worker_pool) = login(&db, "w", " in role pgflow_worker").await;
    let w = worker(&worker_pool, "busy").await;
    assert_eq!(read_and_start(&worker_pool, "busy", w, 10).await.len(), 1);

    // The attacker's session says every worker is long dead; the healthy task stays.
    let mut conn = worker_pool.acquire().await.unwrap();
    sqlx::query("set pgflow.dead_worker_after = '-1 day'")
        .execute(&mut *conn)
        .await
        .unwrap();
    for _ in 0..4 {
        let n: i32 = sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
    drop(conn);
    assert_eq!(
        scalar_text(
            admin,
            "select format('%s/%s/%s', status, requeued_count, permanently_stalled_at is null) from pgflow.step_tasks"
        )
        .await
        .as_deref(),
        Some("started/0/t")
    );

    // The operator's setting has a floor: no value makes a fresh heartbeat look dead.
    let e = expect_error(
        admin,
        "update pgflow.config set dead_worker_after = '-1 day'",
    )
    .await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("dead_worker_after_min"),
        "{e:?}"
    );
    // Nor can the worker role change the configuration.
    let e = expect_error(
        &worker_pool,
        "update pgflow.config set dead_worker_after = '1 second'",
    )
    .await;
    assert_eq!(e.code, "42501", "{e:?}");
}

#[tokio::test]
async fn a_role_without_privileges_hears_no_inputs_outputs_or_errors() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('secret'); select pgflow.add_step('secret', 'a');",
    )
    .await;
    let (_, nobody) = login(&db, "nobody", "").await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&nobody)
        .await
        .unwrap();
    listener.listen("pgflow_events").await.unwrap();

    let run = start(admin, "secret", json!({"api_key": "sk-input-secret"})).await;
    let w = worker(admin, "secret").await;
    read_and_start(admin, "secret", w, 1).await;
    fail(admin, run, "a", 0, "token sk-error-secret rejected").await;
    make_visible(admin, "secret").await;
    read_and_start(admin, "secret", w, 1).await;
    complete(admin, run, "a", 0, json!({"token": "sk-output-secret"})).await;
    assert_eq!(run_status(admin, run).await, "completed");

    let mut heard = Vec::new();
    while let Ok(n) =
        tokio::time::timeout(std::time::Duration::from_millis(400), listener.recv()).await
    {
        heard.push(n.unwrap().payload().to_string());
    }
    assert!(heard.len() >= 4, "{heard:?}");
    for payload in &heard {
        assert!(!payload.contains("sk-"), "{payload}");
    }
}

#[tokio::test]
async fn the_worker_role_has_no_hold_on_pgmq() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('wq'); select pgflow.add_step('wq', 'a');
         select pgmq.create('not_pgflow'); select pgmq.send('not_pgflow', '{\"n\": 1}');",
    )
    .await;
    start(admin, "wq", json!({})).await;
    let (_, worker_pool) = login(&db, "w", " in role pgflow_worker").await;

    for sql in [
        "update pgmq.q_wq set vt = now() + interval '100 years'",
        "select pgmq.set_vt('wq', 1, 2000000000)",
        "update pgmq.meta set queue_name = 'hijacked'",
        "select * from pgmq.read('not_pgflow', 30, 1)",
        "delete from pgmq.__pgmq_migrations",
    ] {
        let e = expect_error(&worker_pool, sql).await;
        assert_eq!(e.code, "42501", "{sql}: {e:?}");
    }
    // Its one way in reads pgflow queues only, and only for a sane visibility timeout.
    let e = expect_error(
        &worker_pool,
        "select * from pgflow.read_with_poll('not_pgflow', 5, 1, 0)",
    )
    .await;
    assert_eq!(e.code, "42501", "{e:?}");
    assert!(
        e.message.contains("not the queue of a pgflow flow"),
        "{e:?}"
    );
    let e = expect_error(
        &worker_pool,
        "select * from pgflow.read_with_poll('wq', 2000000000, 1, 0)",
    )
    .await;
    assert!(e.message.contains("vt must be 0 to"), "{e:?}");
    assert_eq!(live_messages(admin, "wq").await, 1);
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgmq.q_wq where vt <= now()").await,
        1
    );
    assert_eq!(
        scalar_i64(
            admin,
            "select count(*) from pgmq.q_not_pgflow where vt <= now()"
        )
        .await,
        1
    );
    // And the worker still works through it.
    let w = worker(&worker_pool, "wq").await;
    assert_eq!(read_and_start(&worker_pool, "wq", w, 5).await.len(), 1);
}

#[tokio::test]
async fn payload_limits_cannot_be_lifted_or_slipped_past() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('big'); select pgflow.add_step('big', 'a');
         update pgflow.config set max_payload_bytes = 1048576, max_error_chars = 256;",
    )
    .await;

    // 4 MB that compresses to a few KB: the text size counts.
    exec(
        admin,
        "create table blob as select jsonb_build_object('z', repeat('z', 4194304)) v",
    )
    .await;
    assert!(
        scalar_i64(admin, "select pg_column_size(v)::bigint from blob").await < 1048576,
        "stored compressed, under the limit"
    );
    let e = expect_error(
        admin,
        "select pgflow.start_flow('big', (select v from blob))",
    )
    .await;
    assert_eq!(e.code, "54000", "{e:?}");
    assert!(e.message.contains("over the 1048576-byte limit"), "{e:?}");
    // Numbers that are a few bytes stored but 1.3 MB as text.
    let e = expect_error(
        admin,
        "select pgflow.start_flow('big', (select jsonb_agg(1e130000) from generate_series(1, 10)))",
    )
    .await;
    assert_eq!(e.code, "54000", "{e:?}");
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.runs").await,
        0
    );

    // A worker's session setting does not lift the limit for its output.
    let run = start(admin, "big", json!({})).await;
    let (_, worker_pool) = login(&db, "w", " in role pgflow_worker").await;
    let w = worker(&worker_pool, "big").await;
    read_and_start(&worker_pool, "big", w, 1).await;
    let mut conn = worker_pool.acquire().await.unwrap();
    sqlx::query("set pgflow.max_payload_bytes = 1000000000")
        .execute(&mut *conn)
        .await
        .unwrap();
    let status: String =
        sqlx::query_scalar("select status from pgflow.complete_task($1, 'a', 0, $2)")
            .bind(run)
            .bind(json!("x".repeat(2 * 1024 * 1024)))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(status, "queued");
    assert_eq!(
        scalar_i64(
            admin,
            "select count(*) from pgflow.step_tasks where output is not null"
        )
        .await,
        0
    );

    // A huge error message is cut.
    make_visible(admin, "big").await;
    read_and_start(&worker_pool, "big", w, 1).await;
    fail(&worker_pool, run, "a", 0, &"e".repeat(1_000_000)).await;
    let stored = scalar_text(admin, "select error_message from pgflow.step_tasks")
        .await
        .unwrap();
    assert!(stored.len() < 400, "{} characters kept", stored.len());
    assert!(
        stored.ends_with("[truncated: 1000000 characters in all]"),
        "{stored}"
    );
}

#[tokio::test]
async fn a_map_whose_outputs_together_exceed_the_limit_fails_clearly() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('agg'); select pgflow.add_step('agg', 'm', step_type => 'map');
         update pgflow.config set max_payload_bytes = 1024;",
    )
    .await;
    let run = start(admin, "agg", json!([1, 2, 3])).await;
    let w = worker(admin, "agg").await;
    let done = drive(admin, "agg", w, |_| json!("o".repeat(500))).await;
    assert_eq!(done, 3);
    assert_eq!(run_status(admin, run).await, "failed");
    let state = step_state(admin, run, "m").await;
    assert_eq!(state.status, "failed");
    let msg = state.error_message.unwrap();
    assert!(
        msg.starts_with("[OUTPUT_TOO_LARGE] Map step m produced a combined output of"),
        "{msg}"
    );
    assert_eq!(state.output, None);
}

#[tokio::test]
async fn fan_out_is_bounded_at_start_and_when_a_dependent_map_is_released() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('wide'); select pgflow.add_step('wide', 'm', step_type => 'map');
         select pgflow.create_flow('wide2'); select pgflow.add_step('wide2', 'list');
         select pgflow.add_step('wide2', 'each', array['list'], step_type => 'map');
         update pgflow.config set max_map_width = 10;",
    )
    .await;
    let e = expect_error(
        admin,
        "select pgflow.start_flow('wide', (select jsonb_agg(null::int) from generate_series(1, 11)))",
    )
    .await;
    assert_eq!(e.code, "54000", "{e:?}");
    assert!(
        e.message.contains("11 elements") && e.message.contains("max_map_width"),
        "{e:?}"
    );
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.runs").await,
        0
    );
    start(admin, "wide", json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).await;

    let run = start(admin, "wide2", json!({})).await;
    let w = worker(admin, "wide2").await;
    read_and_start(admin, "wide2", w, 1).await;
    complete(admin, run, "list", 0, json!(vec![0; 11])).await;
    assert_eq!(run_status(admin, run).await, "failed");
    let state = step_state(admin, run, "each").await;
    assert_eq!(state.status, "failed");
    assert!(state
        .error_message
        .unwrap()
        .starts_with("[MAP_TOO_WIDE] Map step each would fan out to 11 tasks"),);
    assert_eq!(
        scalar_i64(
            admin,
            "select count(*) from pgflow.step_tasks where step_slug = 'each'"
        )
        .await,
        0
    );
    assert_eq!(live_messages(admin, "wide2").await, 0);
}

#[tokio::test]
async fn slugs_differing_only_in_case_cannot_share_a_queue() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('Pay'); select pgflow.add_step('Pay', 'a');",
    )
    .await;
    start(admin, "Pay", json!({})).await;
    let e = expect_error(admin, "select pgflow.create_flow('pay')").await;
    assert_eq!(e.code, "23505", "{e:?}");
    assert!(
        e.message
            .contains("'pay' differs only in case from existing flow 'Pay'"),
        "{e:?}"
    );
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.flows").await,
        1
    );
    // The same flow again is still the idempotent no-op it always was.
    exec(admin, "select pgflow.create_flow('Pay')").await;
    assert_eq!(live_messages(admin, "Pay").await, 1);
}

#[tokio::test]
async fn a_flow_whose_cascade_would_exceed_the_safety_limit_is_refused_when_defined() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.create_flow('deep');
         select pgflow.add_step('deep', 'm1', step_type => 'map');
         select pgflow.add_step('deep', 'm' || i, array['m' || (i - 1)], step_type => 'map')
           from generate_series(2, 49) i;",
    )
    .await;
    // 49 empty maps in a row still run to completion.
    let run = start(admin, "deep", json!([])).await;
    assert_eq!(run_status(admin, run).await, "completed");

    let e = expect_error(
        admin,
        "select pgflow.add_step('deep', 'm50', array['m49'], step_type => 'map')",
    )
    .await;
    assert_eq!(e.code, "54000", "{e:?}");
    assert!(e.message.contains("chain of 50 steps"), "{e:?}");
    // Conditional steps count too; a plain step breaks the chain.
    let e = expect_error(
        admin,
        "select pgflow.add_step('deep', 'c50', array['m49'], required_input_pattern => '{\"x\": 1}')",
    )
    .await;
    assert_eq!(e.code, "54000", "{e:?}");
    exec(
        admin,
        "select pgflow.add_step('deep', 'plain', array['m49'])",
    )
    .await;
    assert_eq!(
        scalar_i64(admin, "select count(*) from pgflow.steps").await,
        50
    );
}

#[tokio::test]
async fn a_connect_only_role_holding_the_install_lock_gets_named_instead_of_blocking_forever() {
    let db = TestDb::empty().await;
    let (squatter, squatter_pool) = login(&db, "squatter", "").await;
    let mut conn = squatter_pool.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar(
        "select pg_backend_pid() from (select pg_advisory_lock(8099555070761697281)) l",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();

    let e = pgflow_db::install::install_waiting(db.url(), std::time::Duration::from_millis(300))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("could not take the pgflow install lock")
            && text.contains(&format!("backend {pid} (role {squatter}")),
        "{text}"
    );

    sqlx::query("select pg_advisory_unlock_all()")
        .execute(&mut *conn)
        .await
        .unwrap();
    pgflow_db::install::install_waiting(db.url(), std::time::Duration::from_millis(300))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_held_flow_lock_fails_with_the_holder_named() {
    let db = TestDb::new().await;
    let admin = db.pool();
    let (squatter, squatter_pool) = login(&db, "squatter", "").await;
    let mut conn = squatter_pool.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar(
        "select pg_backend_pid() from (select pg_advisory_lock(1, hashtext('held'))) l",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let e = expect_error(
        admin,
        "select pgflow._advisory_xact_lock(1, hashtext('held'), 'flow ''held'' for compiling', interval '200 ms')",
    )
    .await;
    assert_eq!(e.code, "55P03", "{e:?}");
    assert!(
        e.message
            .contains("could not lock flow 'held' for compiling")
            && e.message
                .contains(&format!("backend {pid} (role {squatter}")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_throwaway_cluster_refuses_tcp_connections_without_its_password() {
    let cluster = tokio::task::spawn_blocking(pgflow_pgtemp::TempCluster::start)
        .await
        .unwrap()
        .unwrap();
    let url = cluster.admin_url();
    assert!(url.starts_with("postgres://postgres:"), "a password is set");
    sqlx::PgPool::connect(&url).await.unwrap().close().await;
    let mut bare = url::Url::parse(&url).unwrap();
    bare.set_password(None).unwrap();
    let e = sqlx::PgPool::connect(bare.as_str()).await.unwrap_err();
    assert!(
        e.to_string().contains("password"),
        "connecting without the password: {e}"
    );
    assert!(!format!("{cluster:?}").contains(url::Url::parse(&url).unwrap().password().unwrap()));
}

/// A worker may ask for more grace before the sweep presumes it dead
/// (`WorkerConfig::dead_worker_after`), never for less than the owner's setting, and
/// only within 1 second .. 1 day, for a registered worker.
#[tokio::test]
async fn a_worker_can_lengthen_but_not_shorten_its_own_dead_after() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('graced'); select pgflow.add_step('graced', 'a');",
    )
    .await;
    start(admin, "graced", json!({})).await;
    start(admin, "graced", json!({})).await;
    let (_, worker_pool) = login(&db, "g", " in role pgflow_worker").await;
    let patient = worker(&worker_pool, "graced").await;
    let plain = worker(&worker_pool, "graced").await;
    assert_eq!(
        read_and_start(&worker_pool, "graced", patient, 1)
            .await
            .len(),
        1
    );
    assert_eq!(
        read_and_start(&worker_pool, "graced", plain, 1).await.len(),
        1
    );
    exec(
        &worker_pool,
        &format!("select pgflow.set_worker_dead_after('{patient}', '1 hour')"),
    )
    .await;
    // Less than the owner's 15 s changes nothing.
    exec(
        &worker_pool,
        &format!("select pgflow.set_worker_dead_after('{plain}', '1 second')"),
    )
    .await;

    // Both silent for a minute: dead by the owner's setting, not by the patient one's hour.
    exec(
        admin,
        "update pgflow.workers set last_heartbeat_at = now() - interval '1 minute'",
    )
    .await;
    let requeued: i32 = sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
        .fetch_one(&worker_pool)
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    assert_eq!(
        scalar_text(
            admin,
            &format!(
                "select string_agg(format('%s:%s', status, last_worker_id = '{patient}'), ',' order by status)
                   from pgflow.step_tasks"
            ),
        )
        .await
        .as_deref(),
        Some("queued:,started:t")
    );

    let e = expect_error(
        &worker_pool,
        &format!("select pgflow.set_worker_dead_after('{patient}', '2 days')"),
    )
    .await;
    assert!(
        e.message.contains(&patient.to_string()) && e.message.contains("out of range"),
        "{e:?}"
    );
    let stranger = uuid::Uuid::new_v4();
    let e = expect_error(
        &worker_pool,
        &format!("select pgflow.set_worker_dead_after('{stranger}', '1 hour')"),
    )
    .await;
    assert!(
        e.message
            .contains(&format!("worker {stranger} is not registered")),
        "{e:?}"
    );
    // Only the worker role (and the owner) may call it.
    let (_, nobody) = login(&db, "n", "").await;
    let e = expect_error(
        &nobody,
        &format!("select pgflow.set_worker_dead_after('{patient}', '1 hour')"),
    )
    .await;
    assert_eq!(e.code, "42501", "{e:?}");
}
