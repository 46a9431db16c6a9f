//! Failed attempts: retries with backoff, per-step options, and fail_task where it
//! must change nothing.

use pgflow_tests::TestDb;
use serde_json::json;

use super::fixtures::with_flow;
use crate::common::*;

#[tokio::test]
async fn failed_attempts_retry_with_exponential_backoff_then_fail_the_run() {
    let (db, w) = with_flow(
        "r",
        "select pgflow.create_flow('r', max_attempts => 3, base_delay => 2);
         select pgflow.add_step('r', 'flaky'); select pgflow.add_step('r', 'other');
         select pgflow.add_step('r', 'after', array['flaky']);",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "r", json!({})).await;
    let tasks = read_and_start(pool, "r", w, 10).await;
    assert_eq!(tasks.len(), 2);
    for (attempt, expected_delay) in [(1, 4.0), (2, 8.0)] {
        if attempt > 1 {
            make_visible(pool, "r").await;
            let t = read_and_start(pool, "r", w, 10).await;
            assert_eq!(t.len(), 1, "attempt {attempt}");
        }
        assert_eq!(
            fail(pool, run, "flaky", 0, &format!("boom {attempt}"))
                .await
                .as_deref(),
            Some("queued")
        );
        let secs: f64 = sqlx::query_scalar(
            "select extract(epoch from q.vt - clock_timestamp())::float8 from pgmq.q_r q
               join pgflow.step_tasks t on t.message_id = q.msg_id where t.step_slug = 'flaky'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert!(
            (secs - expected_delay).abs() < 1.5,
            "attempt {attempt}: retry in {secs}s, expected {expected_delay}"
        );
        let err = scalar_text(
            pool,
            "select error_message from pgflow.step_tasks where step_slug = 'flaky'",
        )
        .await;
        assert_eq!(err, Some(format!("boom {attempt}")));
    }
    make_visible(pool, "r").await;
    read_and_start(pool, "r", w, 10).await;
    assert_eq!(
        fail(pool, run, "flaky", 0, "boom 3").await.as_deref(),
        Some("failed")
    );

    assert_eq!(run_status(pool, run).await, "failed");
    let flaky = step_state(pool, run, "flaky").await;
    assert_eq!(
        (flaky.status.as_str(), flaky.error_message.as_deref()),
        ("failed", Some("boom 3"))
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select attempts_count::bigint from pgflow.step_tasks where step_slug = 'flaky'"
        )
        .await,
        3
    );
    // The sibling's message is archived with the run, so nobody picks it up.
    assert_eq!(live_messages(pool, "r").await, 0);
    // A late completion of the sibling changes nothing.
    complete(pool, run, "other", 0, json!(1)).await;
    assert_eq!(step_state(pool, run, "other").await.status, "started");
    assert_eq!(run_status(pool, run).await, "failed");
    // Replaying the final failure changes nothing either.
    assert_eq!(
        fail(pool, run, "flaky", 0, "again").await.as_deref(),
        Some("failed")
    );
    let err = scalar_text(
        pool,
        "select error_message from pgflow.step_tasks where step_slug = 'flaky'",
    )
    .await;
    assert_eq!(err.as_deref(), Some("boom 3"));
}

#[tokio::test]
async fn step_options_override_flow_options_and_zero_attempts_never_retries() {
    let (db, w) = with_flow(
        "o",
        "select pgflow.create_flow('o', max_attempts => 5, base_delay => 1);
         select pgflow.add_step('o', 'once', max_attempts => 1);",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "o", json!({})).await;
    read_and_start(pool, "o", w, 1).await;
    assert_eq!(
        fail(pool, run, "once", 0, "no").await.as_deref(),
        Some("failed")
    );
    assert_eq!(run_status(pool, run).await, "failed");

    // Options may be tuned live with UPDATE.
    exec(
        pool,
        "update pgflow.steps set opt_max_attempts = 2 where step_slug = 'once'",
    )
    .await;
    let run = start(pool, "o", json!({})).await;
    read_and_start(pool, "o", w, 1).await;
    assert_eq!(
        fail(pool, run, "once", 0, "no").await.as_deref(),
        Some("queued")
    );
}

#[tokio::test]
async fn fail_task_on_a_queued_task_changes_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('q'); select pgflow.add_step('q', 'a');",
    )
    .await;
    let run = start(pool, "q", json!({})).await;
    let vt_before = scalar_text(pool, "select vt::text from pgmq.q_q").await;
    assert_eq!(
        fail(pool, run, "q_unknown_step_not_there", 0, "x").await,
        None
    );
    assert_eq!(
        fail(pool, run, "a", 0, "x").await.as_deref(),
        Some("queued")
    );
    assert_eq!(
        scalar_text(pool, "select vt::text from pgmq.q_q").await,
        vt_before
    );
    assert_eq!(
        scalar_i64(pool, "select attempts_count::bigint from pgflow.step_tasks").await,
        0
    );
    assert_eq!(
        scalar_text(pool, "select error_message from pgflow.step_tasks").await,
        None
    );
}
