//! Claiming tasks: which messages start which tasks, visibility, start delays and
//! idempotent claims.

use serde_json::json;

use super::fixtures::{claim, with_flow};
use crate::common::*;

#[tokio::test]
async fn start_tasks_moves_visibility_to_step_timeout_plus_margin() {
    let (db, w) = with_flow(
        "vt",
        "select pgflow.create_flow('vt', timeout => 60);
         select pgflow.add_step('vt', 'quick');
         select pgflow.add_step('vt', 'slow', timeout => 300);",
    )
    .await;
    let pool = db.pool();
    start(pool, "vt", json!({})).await;
    // The read sets a 5 s visibility; start_tasks must replace it with timeout + 2 s.
    let tasks = read_and_start(pool, "vt", w, 10).await;
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        let secs: f64 = sqlx::query_scalar(
            "select extract(epoch from vt - clock_timestamp())::float8 from pgmq.q_vt where msg_id = $1",
        )
        .bind(t.msg_id)
        .fetch_one(pool)
        .await
        .unwrap();
        let expected = if t.step_slug == "slow" { 302.0 } else { 62.0 };
        assert!(
            (secs - expected).abs() < 3.0,
            "{}: vt in {secs}s, expected about {expected}s",
            t.step_slug
        );
    }
    // So a second worker reading now gets nothing.
    let w2 = worker(pool, "vt").await;
    assert!(read_and_start(pool, "vt", w2, 10).await.is_empty());
}

#[tokio::test]
async fn start_tasks_ignores_unknown_and_already_started_messages() {
    let (db, w) = with_flow(
        "f",
        "select pgflow.create_flow('f'); select pgflow.add_step('f', 'a');",
    )
    .await;
    let pool = db.pool();
    start(pool, "f", json!({})).await;
    let msg: i64 = scalar_i64(pool, "select msg_id from pgmq.q_f").await;
    let first =
        sqlx::query("select * from pgflow.start_tasks('f', array[$1, 999999]::bigint[], $2)")
            .bind(msg)
            .bind(w)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(first.len(), 1);
    let second = sqlx::query("select * from pgflow.start_tasks('f', array[$1]::bigint[], $2)")
        .bind(msg)
        .bind(w)
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        second.is_empty(),
        "a started task must not be handed out twice"
    );
    assert_eq!(
        scalar_i64(pool, "select attempts_count::bigint from pgflow.step_tasks").await,
        1
    );
    let last_worker = scalar_text(pool, "select last_worker_id::text from pgflow.step_tasks").await;
    assert_eq!(last_worker, Some(w.to_string()));
}

#[tokio::test]
async fn start_delay_postpones_only_the_first_delivery() {
    let (db, w) = with_flow(
        "d",
        "select pgflow.create_flow('d'); select pgflow.add_step('d', 'later', start_delay => 30);",
    )
    .await;
    let pool = db.pool();
    start(pool, "d", json!({})).await;
    let secs: f64 = sqlx::query_scalar(
        "select extract(epoch from vt - clock_timestamp())::float8 from pgmq.q_d",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!((27.0..=31.0).contains(&secs), "message visible in {secs}s");
    assert!(read_and_start(pool, "d", w, 10).await.is_empty());
}

#[tokio::test]
async fn claim_tasks_is_idempotent_per_claim_id() {
    let (db, w) = with_flow("cl", "select pgflow.create_flow('cl'); select pgflow.add_step('cl', 'each', step_type => 'map');").await;
    let pool = db.pool();
    let run = start(pool, "cl", json!([10, 20, 30])).await;
    let claim_id = uuid::Uuid::new_v4();
    let first = claim(pool, "cl", w, claim_id, 2).await;
    assert_eq!(first.len(), 2);
    // The reply was "lost": the same call with the same claim id returns the same tasks, reads nothing new.
    let again = claim(pool, "cl", w, claim_id, 2).await;
    assert_eq!(
        again
            .iter()
            .map(|t| (t.task_index, t.input.clone()))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|t| (t.task_index, t.input.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.step_tasks where status = 'started'"
        )
        .await,
        2
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select max(attempts_count)::bigint from pgflow.step_tasks"
        )
        .await,
        1
    );
    // A new claim id reads what is left.
    let next = claim(pool, "cl", w, uuid::Uuid::new_v4(), 2).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].input, json!(30));
    // Completed tasks are not replayed.
    for t in &first {
        complete(pool, run, "each", t.task_index, json!(1)).await;
    }
    let replay = claim(pool, "cl", w, claim_id, 2).await;
    assert!(replay.is_empty());
    let e = expect_error(
        pool,
        "select * from pgflow.claim_tasks('cl', gen_random_uuid(), NULL, 1)",
    )
    .await;
    assert!(e.message.contains("claim_id"), "{e:?}");
}

/// The worker obeys the settings the database returns with each task, so they must be the
/// effective ones (the step's option, else the flow's) as the rows are now, with the attempt
/// number the start just counted, on both claim paths and on a replayed claim.
#[tokio::test]
async fn claimed_tasks_carry_their_attempt_and_the_current_step_settings() {
    use pgflow_db::api;
    let (db, w) = with_flow(
        "st",
        "select pgflow.create_flow('st', max_attempts => 3, base_delay => 5, timeout => 60);
         select pgflow.add_step('st', 'own', timeout => 30);
         select pgflow.add_step('st', 'flows');",
    )
    .await;
    let pool = db.pool();
    exec(
        pool,
        "update pgflow.steps set opt_timeout = 7, opt_base_delay = 2 where step_slug = 'own';
         update pgflow.flows set opt_timeout = 9, opt_max_attempts = 4 where flow_slug = 'st';",
    )
    .await;
    let run = start(pool, "st", json!({})).await;
    let settings = |t: &api::ClaimedTask| {
        (
            t.step_slug.clone(),
            t.attempts_count,
            t.max_attempts,
            t.timeout_secs,
            t.base_delay_secs,
            t.retry_delay_secs,
        )
    };
    let claim_id = uuid::Uuid::new_v4();
    let mut first: Vec<_> = api::claim_tasks(pool, "st", w, claim_id, 10, 30)
        .await
        .unwrap()
        .iter()
        .map(settings)
        .collect();
    first.sort();
    // retry_delay = calculate_retry_delay(base_delay, attempts_count) = base × 2.
    assert_eq!(
        first,
        vec![
            ("flows".into(), 1, 4, 9, 5, 10),
            ("own".into(), 1, 4, 7, 2, 4),
        ]
    );
    let mut replayed: Vec<_> = api::claim_tasks(pool, "st", w, claim_id, 10, 30)
        .await
        .unwrap()
        .iter()
        .map(settings)
        .collect();
    replayed.sort();
    assert_eq!(replayed, first);

    // The second attempt, through read_with_poll + start_worker_tasks, after another change.
    fail(pool, run, "own", 0, "first attempt").await;
    exec(
        pool,
        "update pgflow.steps set opt_base_delay = 3 where step_slug = 'own'",
    )
    .await;
    make_visible(pool, "st").await;
    let msgs: Vec<i64> = api::read_with_poll(pool, "st", 5, 10, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.msg_id)
        .collect();
    let second: Vec<_> = api::start_worker_tasks(pool, "st", &msgs, w)
        .await
        .unwrap()
        .iter()
        .map(settings)
        .collect();
    assert_eq!(second, vec![("own".into(), 2, 4, 7, 3, 12)]);
}
