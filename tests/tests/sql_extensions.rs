//! Crash recovery and the pgflow-rs extensions to pgflow's SQL API: requeue_stalled_tasks
//! with worker liveness, cancel_run, retry_run, prune_data_older_than, and the inspection
//! views run_progress and active_tasks.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;

#[tokio::test]
async fn a_stalled_task_is_requeued_after_its_worker_vanished_then_parked() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('st', timeout => 5); select pgflow.add_step('st', 'a');",
    )
    .await;
    let w = worker(pool, "st").await;
    let run = start(pool, "st", json!({})).await;
    read_and_start(pool, "st", w, 1).await;

    // A live worker's task within its timeout is left alone.
    assert_eq!(
        scalar_i64(pool, "select pgflow.requeue_stalled_tasks()::bigint").await,
        0
    );

    // The worker vanished: no heartbeat for a minute.
    exec(pool, &format!("update pgflow.workers set last_heartbeat_at = now() - interval '1 minute' where worker_id = '{w}'")).await;
    assert_eq!(
        scalar_i64(pool, "select pgflow.requeue_stalled_tasks()::bigint").await,
        1
    );
    let t = scalar_text(
        pool,
        "select format('%s/%s/%s', status, requeued_count, attempts_count) from pgflow.step_tasks",
    )
    .await;
    assert_eq!(t.as_deref(), Some("queued/1/1"));
    // The message is visible at once to another worker.
    let w2 = worker(pool, "st").await;
    let tasks = read_and_start(pool, "st", w2, 1).await;
    assert_eq!(tasks.len(), 1);

    // A task past its timeout + 30 s is stalled even if its worker still heartbeats.
    exec(pool, "update pgflow.step_tasks set started_at = now() - interval '36 seconds', queued_at = now() - interval '1 hour'").await;
    assert_eq!(
        scalar_i64(pool, "select pgflow.requeue_stalled_tasks()::bigint").await,
        1
    );

    // After 3 requeues the task is parked: left started, message archived.
    for _ in 0..2 {
        make_visible(pool, "st").await;
        read_and_start(pool, "st", w2, 1).await;
        exec(
            pool,
            "update pgflow.step_tasks set started_at = now() - interval '36 seconds'",
        )
        .await;
        pgflow_requeue(pool).await;
    }
    make_visible(pool, "st").await;
    read_and_start(pool, "st", w2, 1).await;
    exec(
        pool,
        "update pgflow.step_tasks set started_at = now() - interval '36 seconds'",
    )
    .await;
    assert_eq!(
        scalar_i64(pool, "select pgflow.requeue_stalled_tasks()::bigint").await,
        0
    );
    let t = scalar_text(
        pool,
        "select format('%s/%s/%s', status, requeued_count, permanently_stalled_at is not null) from pgflow.step_tasks",
    )
    .await;
    assert_eq!(t.as_deref(), Some("started/3/t"));
    assert_eq!(live_messages(pool, "st").await, 0);
    let parked = scalar_i64(
        pool,
        "select count(*) from pgflow.active_tasks where permanently_stalled",
    )
    .await;
    assert_eq!(parked, 1);
    // A late completion still counts: the first report wins.
    complete(pool, run, "a", 0, json!("late")).await;
    assert_eq!(run_status(pool, run).await, "completed");
}

async fn pgflow_requeue(pool: &sqlx::PgPool) {
    exec(pool, "select pgflow.requeue_stalled_tasks()").await;
}

#[tokio::test]
async fn tasks_of_a_stopped_worker_are_requeued_at_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('ms'); select pgflow.add_step('ms', 'a');",
    )
    .await;
    let w = worker(pool, "ms").await;
    start(pool, "ms", json!({})).await;
    read_and_start(pool, "ms", w, 1).await;
    exec(pool, &format!("select pgflow.mark_worker_stopped('{w}')")).await;
    assert_eq!(
        scalar_i64(pool, "select pgflow.requeue_stalled_tasks()::bigint").await,
        1
    );
}

#[tokio::test]
async fn cancel_during_a_wide_map_leaves_no_queued_messages_and_ignores_late_reports() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('cx'); select pgflow.add_step('cx', 'wide', step_type => 'map');
         select pgflow.add_step('cx', 'sum', array['wide']);",
    )
    .await;
    let w = worker(pool, "cx").await;
    let input: Vec<i64> = (0..500).collect();
    let run = start(pool, "cx", json!(input)).await;
    let tasks = read_and_start(pool, "cx", w, 50).await;
    for t in &tasks[..10] {
        complete(pool, run, "wide", t.task_index, json!(1)).await;
    }
    let cancelled: bool = sqlx::query_scalar("select pgflow.cancel_run($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(cancelled);
    assert_eq!(run_status(pool, run).await, "cancelled");
    assert_eq!(live_messages(pool, "cx").await, 0);
    assert_eq!(step_state(pool, run, "wide").await.status, "cancelled");
    assert_eq!(step_state(pool, run, "sum").await.status, "cancelled");
    let statuses = scalar_text(
        pool,
        "select string_agg(distinct status, ',' order by status) from pgflow.step_tasks",
    )
    .await;
    assert_eq!(statuses.as_deref(), Some("cancelled,completed"));

    // Late reports change nothing; a second cancel says so.
    assert_eq!(
        complete(pool, run, "wide", tasks[20].task_index, json!(1))
            .await
            .as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        fail(pool, run, "wide", tasks[21].task_index, "x")
            .await
            .as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.step_tasks where status = 'completed'"
        )
        .await,
        10
    );
    let again: bool = sqlx::query_scalar("select pgflow.cancel_run($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(!again);
    assert!(read_and_start(pool, "cx", w, 100).await.is_empty());
}

#[tokio::test]
async fn retry_run_resumes_a_failed_run_keeping_completed_outputs() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('rr', max_attempts => 1);
         select pgflow.add_step('rr', 'first');
         select pgflow.add_step('rr', 'each', array['first'], step_type => 'map');
         select pgflow.add_step('rr', 'last', array['each']);",
    )
    .await;
    let w = worker(pool, "rr").await;
    let run = start(pool, "rr", json!({})).await;
    read_and_start(pool, "rr", w, 1).await;
    complete(pool, run, "first", 0, json!([1, 2, 3])).await;
    let tasks = read_and_start(pool, "rr", w, 10).await;
    assert_eq!(tasks.len(), 3);
    complete(pool, run, "each", 0, json!("ok0")).await;
    fail(pool, run, "each", 1, "transient").await;
    assert_eq!(run_status(pool, run).await, "failed");
    let first_completed_at = scalar_text(
        pool,
        "select completed_at::text from pgflow.step_states where step_slug = 'first'",
    )
    .await;

    let resumed: bool = sqlx::query_scalar("select pgflow.retry_run($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(resumed);
    assert_eq!(run_status(pool, run).await, "started");
    let each = step_state(pool, run, "each").await;
    assert_eq!(
        (each.status.as_str(), each.remaining_tasks),
        ("started", Some(2))
    );
    let tasks = read_and_start(pool, "rr", w, 10).await;
    let mut idx: Vec<i32> = tasks.iter().map(|t| t.task_index).collect();
    idx.sort();
    assert_eq!(idx, [1, 2], "only unfinished tasks run again");
    assert_eq!(scalar_i64(pool, "select attempts_count::bigint from pgflow.step_tasks where step_slug = 'each' and task_index = 1").await, 1);
    for t in &tasks {
        complete(
            pool,
            run,
            "each",
            t.task_index,
            json!(format!("ok{}", t.task_index)),
        )
        .await;
    }
    drive(pool, "rr", w, |t| t.input.clone()).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"last": {"each": ["ok0", "ok1", "ok2"]}}))
    );
    assert_eq!(
        step_state(pool, run, "first").await.output,
        Some(json!([1, 2, 3]))
    );
    assert_eq!(
        scalar_text(
            pool,
            "select completed_at::text from pgflow.step_states where step_slug = 'first'"
        )
        .await,
        first_completed_at
    );
    let not_failed: bool = sqlx::query_scalar("select pgflow.retry_run($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(!not_failed);
}

#[tokio::test]
async fn prune_deletes_only_finished_runs_older_than_the_cut() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('pr', max_attempts => 1); select pgflow.add_step('pr', 'a');",
    )
    .await;
    let w = worker(pool, "pr").await;
    let old_done = start(pool, "pr", json!(1)).await;
    let old_failed = start(pool, "pr", json!(2)).await;
    let old_started = start(pool, "pr", json!(3)).await;
    let new_done = start(pool, "pr", json!(4)).await;
    let tasks = read_and_start(pool, "pr", w, 10).await;
    assert_eq!(tasks.len(), 4);
    complete(pool, old_done, "a", 0, json!(1)).await;
    fail(pool, old_failed, "a", 0, "x").await;
    complete(pool, new_done, "a", 0, json!(1)).await;
    // Age everything but new_done by 10 days.
    exec(
        pool,
        &format!(
            "update pgflow.runs set started_at = started_at - interval '10 days',
                    completed_at = completed_at - interval '10 days', failed_at = failed_at - interval '10 days'
              where run_id <> '{new_done}';
             update pgmq.a_pr set archived_at = archived_at - interval '10 days'
              where message->>'run_id' <> '{new_done}';"
        ),
    )
    .await;
    exec(
        pool,
        "select pgflow.prune_data_older_than(interval '7 days')",
    )
    .await;
    let left: Vec<uuid::Uuid> =
        sqlx::query_scalar("select run_id from pgflow.runs order by started_at")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(left, vec![old_started, new_done]);
    assert_eq!(scalar_i64(pool, &format!("select count(*) from pgflow.step_tasks where run_id in ('{old_done}', '{old_failed}')")).await, 0);
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgmq.a_pr").await,
        1,
        "only the new run's archived message stays"
    );
    assert_eq!(run_status(pool, old_started).await, "started");
}

#[tokio::test]
async fn inspection_views_show_progress_and_running_tasks() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('v'); select pgflow.add_step('v', 'each', step_type => 'map');
         select pgflow.add_step('v', 'sum', array['each']);",
    )
    .await;
    let w = worker(pool, "v").await;
    let run = start(pool, "v", json!([1, 2, 3, 4])).await;
    let tasks = read_and_start(pool, "v", w, 2).await;
    complete(pool, run, "each", tasks[0].task_index, json!(1)).await;
    let row = scalar_text(
        pool,
        &format!(
            "select format('%s %s %s/%s %s/%s %s', flow_slug, status, steps_done, steps_total, tasks_done, tasks_total, percent)
               from pgflow.run_progress where run_id = '{run}'"
        ),
    )
    .await;
    assert_eq!(row.as_deref(), Some("v started 0/2 1/4 0.0"));
    let active = scalar_text(
        pool,
        "select format('%s %s %s %s', step_slug, task_index, attempt, worker_id) from pgflow.active_tasks",
    )
    .await;
    assert_eq!(active, Some(format!("each {} 1 {w}", tasks[1].task_index)));
}
