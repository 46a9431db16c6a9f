//! Events: every run and step transition is published on `pgflow_events` inside the
//! transaction that makes it, in causal order, and never for a change that rolled back.

use crate::common;

use std::time::Duration;

use common::*;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;

async fn drain(listener: &mut PgListener) -> Vec<Value> {
    let mut events = Vec::new();
    while let Ok(n) = tokio::time::timeout(Duration::from_millis(400), listener.recv()).await {
        events.push(serde_json::from_str(n.unwrap().payload()).unwrap());
    }
    events
}

#[tokio::test]
async fn a_listener_sees_a_diamond_run_in_transition_order() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('ev');
         select pgflow.add_step('ev', 'a');
         select pgflow.add_step('ev', 'b', array['a']);
         select pgflow.add_step('ev', 'c', array['a']);
         select pgflow.add_step('ev', 'd', array['b', 'c']);",
    )
    .await;
    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen("pgflow_events").await.unwrap();
    let w = worker(pool, "ev").await;
    let run = start(pool, "ev", json!({"in": 1})).await;
    drive(pool, "ev", w, |t| json!(t.step_slug)).await;

    let events = drain(&mut listener).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "run:started",
            "step:a:started",
            "step:a:completed",
            "step:b:started",
            "step:c:started",
            "step:b:completed",
            "step:c:completed",
            "step:d:started",
            "step:d:completed",
            "run:completed"
        ]
    );
    for e in &events {
        assert_eq!(e["topic"], json!(format!("pgflow:run:{run}")));
        let p = &e["payload"];
        assert_eq!(p["run_id"], json!(run.to_string()));
        let event_type = p["event_type"].as_str().unwrap();
        assert_eq!(
            event_type.split(':').next_back(),
            p["status"].as_str(),
            "{e}"
        );
    }
    assert_eq!(events[0]["payload"]["flow_slug"], json!("ev"));
    assert_eq!(events[0]["payload"]["remaining_steps"], json!(4));
    assert_eq!(events[1]["payload"]["remaining_tasks"], json!(1));
    assert_eq!(events[2]["payload"]["step_slug"], json!("a"));
    assert_eq!(events[9]["payload"]["event_type"], json!("run:completed"));
    // Anyone may LISTEN: inputs and outputs stay in the tables.
    for e in &events {
        for key in ["input", "output", "error_message"] {
            assert!(e["payload"].get(key).is_none(), "{key} in {e}");
        }
    }
}

#[tokio::test]
async fn a_rolled_back_start_sends_no_event() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('rb'); select pgflow.add_step('rb', 'a');",
    )
    .await;
    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen("pgflow_events").await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select pgflow.start_flow('rb', '{}')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(drain(&mut listener).await.is_empty());
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.runs").await,
        0
    );
    // A committed start right after is seen.
    start(pool, "rb", json!({})).await;
    let names: Vec<String> = drain(&mut listener)
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["run:started", "step:a:started"]);
}

#[tokio::test]
async fn large_payloads_never_reach_events_nor_fail_the_transition() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('big'); select pgflow.add_step('big', 'a');",
    )
    .await;
    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen("pgflow_events").await.unwrap();
    let w = worker(pool, "big").await;
    let large = "x".repeat(20_000);
    let run = start(pool, "big", json!({"blob": large})).await;
    read_and_start(pool, "big", w, 1).await;
    complete(pool, run, "a", 0, json!({"blob": large})).await;
    assert_eq!(run_status(pool, run).await, "completed");
    let events = drain(&mut listener).await;
    assert_eq!(events.len(), 4);
    for e in &events {
        assert!(e.to_string().len() < 1000, "{e}");
        assert_eq!(e["payload"].get("input"), None::<&Value>);
        assert_eq!(e["payload"].get("output"), None::<&Value>);
    }
    assert_eq!(events[3]["payload"]["status"], json!("completed"));
}

#[tokio::test]
async fn failure_and_skip_events_carry_their_reason() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('fe', max_attempts => 1);
           select pgflow.add_step('fe', 'gate', required_input_pattern => '{"go": true}');
           select pgflow.add_step('fe', 'work');"#,
    )
    .await;
    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen("pgflow_events").await.unwrap();
    let w = worker(pool, "fe").await;
    let run = start(pool, "fe", json!({})).await;
    read_and_start(pool, "fe", w, 1).await;
    fail(pool, run, "work", 0, "kaput").await;
    let events = drain(&mut listener).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "run:started",
            "step:gate:skipped",
            "step:work:started",
            "step:work:failed",
            "run:failed"
        ]
    );
    assert_eq!(
        events[1]["payload"]["skip_reason"],
        json!("condition_unmet")
    );
    assert_eq!(events[1]["payload"]["flow_slug"], json!("fe"));
    // Error messages may hold secrets: the event says where to look, the tables say what.
    assert_eq!(events[3]["payload"].get("error_message"), None::<&Value>);
    assert_eq!(events[4]["payload"].get("error_message"), None::<&Value>);
    assert_eq!(
        step_state(pool, run, "work").await.error_message.as_deref(),
        Some("kaput")
    );
}

#[tokio::test]
async fn events_are_also_broadcast_through_realtime_send_when_enabled() {
    let db = TestDb::new().await;
    let pool = db.pool();
    // A stand-in for Supabase's realtime.send, recording what it is given, made by a
    // superuser (pgflow calls only a trusted one) and switched on by the operator.
    exec(
        pool,
        "create schema realtime;
         create table realtime.messages (topic text, event text, payload jsonb, private boolean);
         create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
         returns void language sql as $$ insert into realtime.messages values (topic, event, payload, private) $$;
         select pgflow.set_realtime_send(true);
         select pgflow.create_flow('rt'); select pgflow.add_step('rt', 'a');",
    )
    .await;
    let w = worker(pool, "rt").await;
    let large = "y".repeat(10_000);
    let run = start(pool, "rt", json!({"big": large})).await;
    drive(pool, "rt", w, |_| json!(1)).await;
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("select topic, event, private from realtime.messages order by ctid")
            .fetch_all(pool)
            .await
            .unwrap();
    let topic = format!("pgflow:run:{run}");
    assert_eq!(
        rows,
        vec![
            (topic.clone(), "run:started".to_string(), false),
            (topic.clone(), "step:a:started".to_string(), false),
            (topic.clone(), "step:a:completed".to_string(), false),
            (topic, "run:completed".to_string(), false),
        ]
    );
    // Realtime gets the full payload; only pg_notify needs trimming.
    let input = scalar_json(
        pool,
        "select payload -> 'input' from realtime.messages where event = 'run:started'",
    )
    .await;
    assert_eq!(input, Some(json!({"big": large})));
}
