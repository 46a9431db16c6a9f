//! Many connections racing on one run: completions of a wide map step and of the branches of
//! a fan-in arrive at the same time, each twice. Counters must never go negative, every task
//! must complete exactly once, the fan-in step must start once and the run complete once.

use crate::common;

use std::collections::HashMap;

use common::*;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;

const WIDTH: i64 = 150;
const CONNECTIONS: usize = 8;

#[tokio::test]
async fn racing_completions_of_a_wide_map_and_a_fan_in_record_everything_once() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    exec(
        &pool,
        "select pgflow.create_flow('race');
         select pgflow.add_step('race', 'wide', step_type => 'map');
         select pgflow.add_step('race', 'left');
         select pgflow.add_step('race', 'right');
         select pgflow.add_step('race', 'join', array['wide', 'left', 'right']);",
    )
    .await;
    let w = worker(&pool, "race").await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("pgflow_events").await.unwrap();

    for round in 0..4 {
        let input: Vec<i64> = (0..WIDTH).collect();
        let run = start(&pool, "race", json!(input)).await;
        let tasks = read_and_start(&pool, "race", w, 1000).await;
        assert_eq!(tasks.len() as i64, WIDTH + 2, "round {round}");

        // Every task is completed by two different connections, in different orders.
        let mut handles = Vec::new();
        for c in 0..CONNECTIONS {
            let pool = pool.clone();
            let mine: Vec<_> = tasks
                .iter()
                .enumerate()
                .filter(|(i, _)| i % CONNECTIONS == c || (i + 3) % CONNECTIONS == c)
                .map(|(_, t)| t.clone())
                .collect();
            handles.push(tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                let ordered: Vec<_> = if c % 2 == 0 {
                    mine
                } else {
                    mine.into_iter().rev().collect()
                };
                for t in ordered {
                    let out = match t.step_slug.as_str() {
                        "wide" => json!(t.input.as_i64().unwrap() + 1),
                        other => json!(other),
                    };
                    sqlx::query("select pgflow.complete_task($1, $2, $3, $4)")
                        .bind(t.run_id)
                        .bind(&t.step_slug)
                        .bind(t.task_index)
                        .bind(out)
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }

        let join = step_state(&pool, run, "join").await;
        assert_eq!(join.status, "started", "round {round}");
        assert_eq!(join.remaining_deps, 0);
        let join_tasks = read_and_start(&pool, "race", w, 10).await;
        assert_eq!(join_tasks.len(), 1, "the fan-in step starts once");
        let expected_wide: Vec<Value> = (1..=WIDTH).map(|v| json!(v)).collect();
        assert_eq!(join_tasks[0].input["wide"], json!(expected_wide));

        // Two connections complete the fan-in at once.
        let (a, b) = tokio::join!(
            complete(&pool, run, "join", 0, json!("first")),
            complete(&pool, run, "join", 0, json!("second"))
        );
        assert_eq!(
            (a.as_deref(), b.as_deref()),
            (Some("completed"), Some("completed"))
        );

        assert_eq!(run_status(&pool, run).await, "completed");
        let out = run_output(&pool, run).await.unwrap();
        assert!(
            out == json!({"join": "first"}) || out == json!({"join": "second"}),
            "{out}"
        );
        let per_task = scalar_text(
            &pool,
            &format!(
                "select string_agg(distinct format('%s/%s', status, attempts_count), ',') from pgflow.step_tasks where run_id = '{run}'"
            ),
        )
        .await;
        assert_eq!(per_task.as_deref(), Some("completed/1"), "round {round}");
        assert_eq!(
            scalar_i64(
                &pool,
                &format!("select count(*) from pgflow.step_tasks where run_id = '{run}'")
            )
            .await,
            WIDTH + 3
        );
        assert_eq!(remaining_steps(&pool, run).await, 0);
        assert_eq!(
            step_state(&pool, run, "wide").await.remaining_tasks,
            Some(0)
        );
        assert_eq!(live_messages(&pool, "race").await, 0);

        // Exactly one run:completed and one step:completed per step reached the listener.
        let mut counts: HashMap<String, usize> = HashMap::new();
        loop {
            let n =
                tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
            let Ok(n) = n else { break };
            let v: Value = serde_json::from_str(n.unwrap().payload()).unwrap();
            if v["payload"]["run_id"] == json!(run.to_string()) {
                *counts
                    .entry(v["event"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        assert_eq!(
            counts.get("run:completed"),
            Some(&1),
            "round {round}: {counts:?}"
        );
        for step in ["wide", "left", "right", "join"] {
            assert_eq!(
                counts.get(&format!("step:{step}:completed")),
                Some(&1),
                "{step}: {counts:?}"
            );
        }
    }
}

#[tokio::test]
async fn batched_completions_from_racing_connections_record_each_task_once() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    exec(
        &pool,
        "select pgflow.create_flow('batch');
         select pgflow.add_step('batch', 'each', step_type => 'map');
         select pgflow.add_step('batch', 'sum', array['each']);",
    )
    .await;
    let w = worker(&pool, "batch").await;
    let runs = [
        start(&pool, "batch", json!((0..100).collect::<Vec<i64>>())).await,
        start(&pool, "batch", json!((0..100).collect::<Vec<i64>>())).await,
    ];
    let tasks = read_and_start(&pool, "batch", w, 1000).await;
    assert_eq!(tasks.len(), 200);
    // Four connections each complete overlapping batches spanning both runs, in opposite orders.
    let mut handles = Vec::new();
    for c in 0..4usize {
        let pool = pool.clone();
        let mut mine: Vec<Value> = tasks
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == c % 2)
            .map(|(_, t)| {
                json!({"run_id": t.run_id, "step_slug": t.step_slug, "task_index": t.task_index,
                       "output": t.input.as_i64().unwrap() * 10})
            })
            .collect();
        if c >= 2 {
            mine.reverse();
        }
        handles.push(tokio::spawn(async move {
            for chunk in mine.chunks(25) {
                sqlx::query("select count(*) from pgflow.complete_tasks($1)")
                    .bind(Value::Array(chunk.to_vec()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    for run in runs {
        let each = step_state(&pool, run, "each").await;
        assert_eq!(each.status, "completed");
        let expected: Vec<i64> = (0..100).map(|v| v * 10).collect();
        assert_eq!(each.output, Some(json!(expected)));
    }
    assert_eq!(
        scalar_i64(&pool, "select count(*) from pgflow.step_tasks where status = 'completed' and attempts_count = 1").await,
        200
    );
    let e = expect_error(&pool, "select pgflow.complete_tasks('{}')").await;
    assert!(e.message.contains("JSON array"), "{e:?}");
}
