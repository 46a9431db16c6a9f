//! `pgflow workers`, `pgflow queues` and `pgflow prune`.

use crate::common;

use common::*;
use pgflow_db::api;
use pgflow_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn workers_are_alive_stale_or_stopped() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &json!({"slug": "w", "steps": [{"slug": "a"}]}));
    let alive = FakeWorker::register(db.pool(), "w").await;
    let stopped = FakeWorker::register(db.pool(), "w").await;
    api::mark_worker_stopped(db.pool(), stopped.id)
        .await
        .unwrap();

    let workers = json(&["workers"], db.url());
    let state_of = |workers: &serde_json::Value, id: Uuid| {
        workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["worker_id"] == id.to_string())
            .map(|w| w["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state_of(&workers, alive.id).as_deref(), Some("alive"));
    assert_eq!(state_of(&workers, stopped.id).as_deref(), Some("stopped"));
    assert_eq!(workers[0]["queue_name"], "w");

    // Any heartbeat is older than 0 s: the running worker counts as stale.
    let workers = json(&["workers", "--stale-after", "0"], db.url());
    assert_eq!(state_of(&workers, alive.id).as_deref(), Some("stale"));

    let active = json(&["workers", "--active"], db.url());
    assert_eq!(active.as_array().unwrap().len(), 1);

    let text = ok(pgflow(&["workers"], Some(db.url())));
    assert!(text.starts_with("WORKER "), "{text}");
    assert!(text.contains("alive") && text.contains("stopped"), "{text}");
}

#[tokio::test]
async fn queues_show_depth_per_flow() {
    let db = TestDb::new().await;
    let _f = add_flow(
        db.url(),
        &json!({"slug": "fan", "steps": [{"slug": "each", "type": "map"}]}),
    );
    let _g = add_flow(db.url(), &json!({"slug": "idle", "steps": [{"slug": "a"}]}));
    ok(pgflow(
        &["run", "start", "fan", "--input", "[1, 2, 3]"],
        Some(db.url()),
    ));
    let worker = FakeWorker::register(db.pool(), "fan").await;
    worker.next(db.pool()).await; // one message in flight, two visible

    let queues = json(&["queues"], db.url());
    assert_eq!(queues[0]["flow_slug"], "fan");
    assert_eq!(queues[0]["has_queue"], true);
    assert_eq!(queues[0]["visible"], 2);
    assert_eq!(queues[0]["total"], 3);
    assert_eq!(queues[0]["tasks_in_flight"], 1);
    assert!(queues[0]["oldest_age_secs"].as_i64().is_some());
    assert_eq!(queues[1]["flow_slug"], "idle");
    assert_eq!(queues[1]["total"], 0);

    let text = ok(pgflow(&["queues"], Some(db.url())));
    assert!(text.contains("VISIBLE/TOTAL"), "{text}");
    assert!(text.contains("2/3"), "{text}");
}

#[tokio::test]
async fn prune_removes_finished_runs_older_than_the_cutoff() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &json!({"slug": "p", "steps": [{"slug": "a"}]}));
    let done = ok(pgflow(&["run", "start", "p"], Some(db.url())));
    let running = ok(pgflow(&["run", "start", "p"], Some(db.url())));
    ok(pgflow(&["run", "cancel", done.trim()], Some(db.url())));

    let err = fails(pgflow(&["prune", "--older-than", "7"], Some(db.url())));
    assert!(err.contains("missing unit"), "{err}");

    let kept = json(&["prune", "--older-than", "7d"], db.url());
    assert_eq!(kept["runs"], 0);
    assert_eq!(
        json(&["run", "list"], db.url()).as_array().unwrap().len(),
        2
    );

    // A cutoff of now: the cancelled run goes, the started one never does.
    let pruned = json(&["prune", "--older-than", "0s"], db.url());
    assert_eq!(pruned["runs"], 1);
    // Cancelling archived the cancelled run's one message; the prune counts it.
    assert_eq!(pruned["archived_messages"], 1);
    let runs = json(&["run", "list"], db.url());
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["run_id"], running.trim());

    let text = ok(pgflow(&["prune", "--older-than", "1h30m"], Some(db.url())));
    assert!(
        text.starts_with("pruned 0 finished run(s), 0 stale worker(s) and 0 archived message(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn prune_removes_stale_workers_but_keeps_those_holding_started_tasks() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &json!({"slug": "pw", "steps": [{"slug": "a"}]}));
    ok(pgflow(&["run", "start", "pw"], Some(db.url())));
    let holder = FakeWorker::register(db.pool(), "pw").await;
    let idle = FakeWorker::register(db.pool(), "pw").await;
    let fresh = FakeWorker::register(db.pool(), "pw").await;
    assert_eq!(holder.read_and_start(db.pool(), 1).await.len(), 1);
    // Both holder and idle look long gone; fresh has just sent a heartbeat.
    sqlx::query(
        "update pgflow.workers set last_heartbeat_at = now() - interval '2 days'
          where worker_id = any ($1)",
    )
    .bind(vec![holder.id, idle.id])
    .execute(db.pool())
    .await
    .unwrap();

    ok(pgflow(&["prune", "--older-than", "1d"], Some(db.url())));

    let left: Vec<Uuid> =
        sqlx::query_scalar("select worker_id from pgflow.workers order by worker_id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let mut expected = vec![holder.id, fresh.id];
    expected.sort();
    assert_eq!(
        left, expected,
        "idle {} should be gone, holder and fresh kept",
        idle.id
    );
    // The held task still points at its (kept) worker, so the stall sweep can find it.
    let held_by: Option<Uuid> =
        sqlx::query_scalar("select last_worker_id from pgflow.step_tasks where status = 'started'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(held_by, Some(holder.id));
}
