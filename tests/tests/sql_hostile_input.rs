//! Hostile input to the public SQL functions: odd slugs, NULLs, huge and deeply nested JSON,
//! negative options. Each call gets a clear error (or a harmless answer) and the database is
//! left exactly as it was.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;
use sqlx::PgPool;

/// The contents of every pgflow table and the message count of every queue, to prove a
/// refused call changed nothing (not only the row counts: an update would not show there).
async fn fingerprint(pool: &PgPool) -> String {
    scalar_text(
        pool,
        "select concat_ws(',',
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.flows t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.steps t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.deps t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.runs t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.step_states t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.step_tasks t),
            (select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from pgflow.workers t),
            (select string_agg(q.queue_name || ':' || (xpath('/row/c/text()', query_to_xml(
                      format('select count(*) as c from pgmq.%I', 'q_' || q.queue_name),
                      false, true, '')))[1]::text, ',' order by q.queue_name)
               from pgmq.list_queues() q))",
    )
    .await
    .unwrap()
}

/// Runs each refused call and checks its SQLSTATE and that its message contains the given
/// words; reports every mismatch at once.
async fn expect_refusals(pool: &PgPool, cases: &[(&str, &str, &str)]) {
    let mut wrong = vec![];
    for (sql, code, words) in cases {
        let e = expect_error(pool, sql).await;
        if e.code != *code || !format!("{} {}", e.message, e.detail).contains(words) {
            wrong.push(format!(
                "{sql}: expected {code} containing {words:?}, got {e:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected refusals:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn hostile_slugs_never_reach_sql_as_identifiers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('ok'); select pgflow.add_step('ok', 'a');",
    )
    .await;
    let before = fingerprint(pool).await;
    let long = "a".repeat(10_000);
    let hostile = [
        "x'; drop schema pgflow cascade; --",
        "x\"; drop table pgflow.runs; --",
        "q;select 1",
        "ünïcödé",
        "emoji_🚀",
        "",
        " ",
        "run",
        "has space",
        "tab\tname",
        "new\nline",
        long.as_str(),
    ];
    let mut outcomes = vec![];
    for slug in hostile {
        for sql in [
            "select pgflow.create_flow($1)",
            "select pgflow.add_step('ok', $1)",
            "select pgflow.add_step('ok', 'b', array[$1])",
            "select pgflow.add_step($1, 'b')",
            "select pgflow.start_flow($1, '{}')",
        ] {
            let r = sqlx::query(sql).bind(slug).execute(pool).await;
            let e = sql_error(r.expect_err(&format!("{sql} with {slug:?} must fail")));
            assert!(e.message.len() < 400, "{e:?}");
            // The constraint (or, for a raised error, the message) names the reason.
            let reason = e.constraint.clone().unwrap_or(e.message.clone());
            outcomes.push(format!("{sql} => {} {reason}", e.code));
        }
        // Functions that only look things up answer harmlessly.
        let shape: serde_json::Value = sqlx::query_scalar("select pgflow._get_flow_shape($1)")
            .bind(slug)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(shape, json!({"steps": []}));
        let r = sqlx::query(
            "select * from pgflow.start_tasks($1, array[1]::bigint[], gen_random_uuid())",
        )
        .bind(slug)
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(r.is_empty());
    }
    // Each call is refused for the slug, the same way whatever the slug is.
    outcomes.sort();
    outcomes.dedup();
    assert_eq!(
        outcomes,
        [
            "select pgflow.add_step($1, 'b') => 23503 steps_flow_slug_fkey",
            "select pgflow.add_step('ok', $1) => 23514 steps_step_slug_check",
            "select pgflow.add_step('ok', 'b', array[$1]) => 23503 deps_flow_slug_dep_slug_fkey",
            "select pgflow.create_flow($1) => 23514 slug_is_valid",
            "select pgflow.start_flow($1, '{}') => 23503 runs_flow_slug_fkey",
        ]
    );
    assert_eq!(fingerprint(pool).await, before);
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pg_namespace where nspname = 'pgflow'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn nulls_everywhere_are_refused_or_ignored() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('n'); select pgflow.add_step('n', 'a');",
    )
    .await;
    let run = start(pool, "n", json!({})).await;
    let before = fingerprint(pool).await;
    expect_refusals(
        pool,
        &[
            (
                "select pgflow.create_flow(NULL)",
                "23514",
                "Invalid flow slug NULL",
            ),
            (
                "select pgflow.add_step(NULL, 'x')",
                "23503",
                "Flow NULL does not exist",
            ),
            (
                "select pgflow.add_step('n', NULL)",
                "23514",
                "Invalid step slug NULL",
            ),
            (
                "select pgflow.add_step('n', 'x', array[NULL]::text[])",
                "23503",
                "lists a NULL dependency",
            ),
            (
                "select pgflow.add_step('n', 'x', when_unmet => NULL)",
                "23514",
                "has when_unmet NULL",
            ),
            (
                "select pgflow.start_flow(NULL, '{}')",
                "23503",
                "Flow NULL does not exist",
            ),
            (
                "select pgflow.start_flow('n', NULL)",
                "23502",
                "the run input must be a JSON value",
            ),
            (
                "select pgflow.ensure_flow_compiled(NULL, '{}')",
                "23514",
                "Invalid flow slug NULL",
            ),
            (
                "select pgflow.complete_tasks(NULL)",
                "P0001",
                "expects a JSON array",
            ),
        ],
    )
    .await;
    assert_eq!(
        fingerprint(pool).await,
        before,
        "a refused call changed something"
    );
    for sql in [
        "select * from pgflow.complete_task(NULL, NULL, NULL, NULL)",
        "select * from pgflow.fail_task(NULL, NULL, NULL, NULL)",
        "select * from pgflow.start_tasks(NULL, NULL, NULL)",
        "select pgflow.cancel_run(NULL)",
        "select pgflow.retry_run(NULL)",
        "select pgflow.get_run_with_states(NULL)",
        "select pgflow.mark_worker_stopped(NULL)",
    ] {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(
        fingerprint(pool).await,
        before,
        "an ignored call changed something"
    );
    // NULL output for a started task is a legitimate JSON-less result: stored as SQL NULL.
    let w = worker(pool, "n").await;
    read_and_start(pool, "n", w, 1).await;
    let e = sqlx::query("select * from pgflow.complete_task($1, 'a', 0, NULL)")
        .bind(run)
        .execute(pool)
        .await;
    assert!(e.is_ok());
    assert_ne!(
        fingerprint(pool).await,
        before,
        "the legitimate completion changed the run"
    );
    assert_eq!(run_status(pool, run).await, "completed");
}

#[tokio::test]
async fn oversized_and_deeply_nested_json_get_clear_errors() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('j'); select pgflow.add_step('j', 'a');",
    )
    .await;
    let before = fingerprint(pool).await;

    // 50 MB of JSON as a run input.
    let big = json!({"blob": "z".repeat(50 * 1024 * 1024)});
    let e = sql_error(
        sqlx::query("select pgflow.start_flow('j', $1)")
            .bind(&big)
            .execute(pool)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "54000", "{e:?}");
    assert!(
        e.message.contains("run input is") && e.message.contains("pgflow.config.max_payload_bytes"),
        "{}",
        e.message
    );

    // Nesting deeper than PostgreSQL's parser accepts.
    let deep = format!("{}1{}", "[".repeat(200_000), "]".repeat(200_000));
    let r = sqlx::query("select pgflow.start_flow('j', $1::jsonb)")
        .bind(&deep)
        .execute(pool)
        .await;
    let e = sql_error(r.unwrap_err());
    assert!(e.code == "54001" || e.message.contains("depth"), "{e:?}");

    // Not JSON at all.
    let r = sqlx::query("select pgflow.start_flow('j', $1::jsonb)")
        .bind("{not json")
        .execute(pool)
        .await;
    assert_eq!(sql_error(r.unwrap_err()).code, "22P02");
    assert_eq!(fingerprint(pool).await, before);

    // An oversized task output is a failed attempt with a message, not a stuck task.
    exec(pool, "update pgflow.flows set opt_max_attempts = 1").await;
    exec(pool, "update pgflow.config set max_payload_bytes = 1024").await;
    let run = start(pool, "j", json!({})).await;
    let w = worker(pool, "j").await;
    read_and_start(pool, "j", w, 1).await;
    let status: String =
        sqlx::query_scalar("select status from pgflow.complete_task($1, 'a', 0, $2)")
            .bind(run)
            .bind(json!("x".repeat(5000)))
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    let err = scalar_text(pool, "select error_message from pgflow.step_tasks")
        .await
        .unwrap();
    assert!(err.starts_with("task output is"), "{err}");
    assert_eq!(run_status(pool, run).await, "failed");
}

#[tokio::test]
async fn negative_and_absurd_options_are_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('o')").await;
    let before = fingerprint(pool).await;
    for sql in [
        "select pgflow.create_flow('o2', max_attempts => -1)",
        "select pgflow.create_flow('o2', timeout => -10)",
        "select pgflow.create_flow('o2', base_delay => -2147483648)",
        "select pgflow.add_step('o', 'x', timeout => 0)",
        "select pgflow.add_step('o', 'x', start_delay => -1)",
        "select pgflow.add_step('o', 'x', max_attempts => -5)",
        "select pgflow.add_step('o', 'x', base_delay => -1)",
    ] {
        let e = expect_error(pool, sql).await;
        assert_eq!(e.code, "23514", "{sql}: {e:?}");
        assert!(!e.detail.is_empty(), "{sql}: the detail names the value");
    }
    assert_eq!(fingerprint(pool).await, before);
}
