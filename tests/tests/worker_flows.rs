//! Worker end to end: real `test_worker` processes run flows to completion.

use crate::worker_support;

use std::collections::HashMap;
use std::time::Duration;

use pgflow::Client;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;
use worker_support::WorkerProc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_flow_completes_across_worker_processes() {
    let db = TestDb::new().await;
    let workers: Vec<WorkerProc> = (0..3)
        .map(|_| WorkerProc::spawn(db.url(), &["--flow", "diamond"]))
        .collect();
    let client = Client::new(db.pool().clone());
    let mut runs = Vec::new();
    for n in 1..=5i64 {
        runs.push((
            n,
            client
                .start_flow("diamond", &json!({"n": n}))
                .await
                .unwrap(),
        ));
    }
    for (n, run) in &runs {
        let out: Value = tokio::time::timeout(Duration::from_secs(30), run.wait())
            .await
            .expect("run finished in time")
            .expect("run completed");
        // d = 2(n+1) + 3(n+1)
        assert_eq!(out, json!({"d": 5 * (n + 1)}), "run for n={n}");
    }
    let rows = sqlx::query("select status, attempts_count from pgflow.step_tasks")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 5 * 4);
    for row in rows {
        assert_eq!(row.get::<String, _>("status"), "completed");
        assert_eq!(row.get::<i32, _>("attempts_count"), 1);
    }
    // get_run exposes the step states.
    let state = client
        .get_run(runs[0].1.run_id())
        .await
        .unwrap()
        .expect("run exists");
    assert_eq!(state.run.status, "completed");
    assert_eq!(state.steps.len(), 4);
    assert!(state.steps.iter().all(|s| s.status == "completed"));
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_of_2000_elements_is_completed_exactly_once() {
    let db = TestDb::new().await;
    let args = ["--flow", "bigmap", "--concurrency", "20", "--batch", "20"];
    let workers: Vec<WorkerProc> = (0..3).map(|_| WorkerProc::spawn(db.url(), &args)).collect();
    let input: Vec<i64> = (0..2000).collect();
    let run = Client::new(db.pool().clone())
        .start_flow("bigmap", &input)
        .await
        .unwrap();
    let out: Value = tokio::time::timeout(Duration::from_secs(120), run.wait())
        .await
        .expect("run finished in time")
        .expect("run completed");
    assert_eq!(out, json!({"total": 2 * input.iter().sum::<i64>()}));

    let rows = sqlx::query(
        "select task_index, status, attempts_count, output, last_worker_id
           from pgflow.step_tasks where step_slug = 'double' order by task_index",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2000);
    let mut per_worker: HashMap<Option<Uuid>, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.get::<i32, _>("task_index"), i as i32);
        assert_eq!(row.get::<String, _>("status"), "completed", "task {i}");
        assert_eq!(
            row.get::<i32, _>("attempts_count"),
            1,
            "task {i} ran more than once"
        );
        assert_eq!(
            row.get::<Value, _>("output"),
            json!(2 * i as i64),
            "task {i}"
        );
        *per_worker.entry(row.get("last_worker_id")).or_default() += 1;
    }
    eprintln!("tasks per worker: {per_worker:?}");
    assert!(
        per_worker.len() >= 2,
        "the map was not shared between workers: {per_worker:?}"
    );
    let step_output: Value = sqlx::query_scalar(
        "select output from pgflow.step_states where step_slug = 'double' and run_id = $1",
    )
    .bind(run.run_id())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        step_output,
        json!(input.iter().map(|x| x * 2).collect::<Vec<_>>())
    );
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_failures_fail_attempts_with_clear_messages_and_retry() {
    let db = TestDb::new().await;
    let worker = WorkerProc::spawn(db.url(), &["--flow", "failing"]);
    let client = Client::new(db.pool().clone());
    let run = client.start_flow("failing", &json!({})).await.unwrap();
    let row = tokio::time::timeout(Duration::from_secs(60), run.wait_terminal())
        .await
        .expect("run finished in time")
        .unwrap();
    // Every step exhausts its 2 attempts and is skipped, so the run
    // completes with no leaf output.
    assert_eq!(row.status, "completed");
    assert_eq!(row.output, None);

    let expected = [
        (
            "returns_error",
            "handler returned an error: deliberate failure",
        ),
        ("panics", "handler panicked: deliberate panic"),
        (
            "too_slow",
            "handler timed out: exceeded the step timeout of 3s",
        ),
        ("not_json", "handler output is not serializable to JSON"),
    ];
    for (step, message) in expected {
        let row = sqlx::query(
            "select status, attempts_count, error_message from pgflow.step_tasks
              where run_id = $1 and step_slug = $2",
        )
        .bind(run.run_id())
        .bind(step)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>("status"), "failed", "{step}");
        assert_eq!(
            row.get::<i32, _>("attempts_count"),
            2,
            "{step}: retried as configured"
        );
        let got: String = row.get("error_message");
        assert!(
            got.contains(message),
            "{step}: error_message {got:?} lacks {message:?}"
        );
        let state: (String, Option<String>) =
            sqlx::query_as("select status, skip_reason from pgflow.step_states where run_id = $1 and step_slug = $2")
                .bind(run.run_id())
                .bind(step)
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(
            state,
            ("skipped".to_string(), Some("handler_failed".to_string())),
            "{step}"
        );
    }
    // The worker survived all of it.
    let alive: i64 =
        sqlx::query_scalar("select count(*) from pgflow.workers where stopped_at is null")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(alive, 1);
    drop(worker);
}

/// A result the database refuses (jsonb rejects a NUL character) inside a batch: the
/// `complete_tasks` call is refused as a whole, the worker reports that batch's results one
/// by one, so only the offending task fails its attempt; its retry succeeds and the run ends
/// with every element right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_result_in_a_batch_fails_only_its_own_task() {
    let db = TestDb::new().await;
    // Forty tasks that all finish together, so results are reported in batches.
    let worker = WorkerProc::spawn(
        db.url(),
        &[
            "--flow",
            "nulmap",
            "--task-ms",
            "300",
            "--concurrency",
            "40",
            "--batch",
            "40",
        ],
    );
    let input: Vec<i64> = (0..40).collect();
    let run = Client::new(db.pool().clone())
        .start_flow("nulmap", &input)
        .await
        .unwrap();
    let out: Value = tokio::time::timeout(Duration::from_secs(60), run.wait())
        .await
        .expect("run finished in time")
        .expect("run completed");
    assert_eq!(
        out,
        json!({"each": input.iter().map(|x| x * 2).collect::<Vec<_>>()})
    );

    let rows: Vec<(i32, i32, Option<String>)> = sqlx::query_as(
        "select task_index, attempts_count, error_message from pgflow.step_tasks
          where step_slug = 'each' order by task_index",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for (index, attempts, error) in rows {
        if index % 5 == 0 {
            assert_eq!(attempts, 2, "task {index} should have been refused once");
            let error = error.unwrap_or_default();
            assert!(
                error.contains("complete_task rejected the handler output"),
                "task {index}: {error}"
            );
        } else {
            assert_eq!(
                (attempts, error),
                (1, None),
                "task {index} failed with a refused neighbour"
            );
        }
    }
    // At least one refused result travelled in a batch and was re-reported one by one.
    assert!(
        worker
            .log_text()
            .contains("complete_tasks refused the batch; reporting its results one by one"),
        "log:\n{}",
        worker.log_text()
    );
}
