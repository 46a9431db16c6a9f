//! A run completes when its last step does: outputs, fan-in inputs, duplicate
//! reports and the run-level read functions.

use pgflow_tests::TestDb;
use serde_json::json;

use super::fixtures::diamond;
use super::fixtures::with_flow;
use crate::common::*;

#[tokio::test]
async fn diamond_run_completes_with_leaf_output_and_fan_in_input() {
    let db = TestDb::new().await;
    let pool = db.pool();
    diamond(pool).await;
    let w = worker(pool, "diamond").await;
    let run = start(pool, "diamond", json!({"n": 2})).await;
    assert_eq!(remaining_steps(pool, run).await, 4);
    assert_eq!(step_state(pool, run, "d").await.remaining_deps, 2);

    let t = read_and_start(pool, "diamond", w, 10).await;
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].step_slug.as_str(), &t[0].input), ("a", &json!({})));
    assert_eq!(t[0].flow_input, Some(json!({"n": 2})));
    complete(pool, run, "a", 0, json!(10)).await;

    let mut t = read_and_start(pool, "diamond", w, 10).await;
    t.sort_by(|x, y| x.step_slug.cmp(&y.step_slug));
    assert_eq!(
        t.iter().map(|x| x.step_slug.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(t[0].input, json!({"a": 10}));
    assert_eq!(t[0].flow_input, None);
    complete(pool, run, "b", 0, json!("B")).await;
    assert_eq!(step_state(pool, run, "d").await.remaining_deps, 1);
    assert!(
        read_and_start(pool, "diamond", w, 10).await.is_empty(),
        "d must wait for c"
    );
    complete(pool, run, "c", 0, json!({"c": true})).await;

    let t = read_and_start(pool, "diamond", w, 10).await;
    assert_eq!(t[0].input, json!({"b": "B", "c": {"c": true}}));
    complete(pool, run, "d", 0, json!([1, 2])).await;

    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"d": [1, 2]})));
    assert_eq!(remaining_steps(pool, run).await, 0);
    assert_eq!(live_messages(pool, "diamond").await, 0);
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgmq.a_diamond").await,
        4
    );
}

#[tokio::test]
async fn run_output_holds_every_completed_leaf() {
    let (db, w) = with_flow("f", "select pgflow.create_flow('f'); select pgflow.add_step('f', 'root');
         select pgflow.add_step('f', 'left', array['root']); select pgflow.add_step('f', 'right', array['root']);").await;
    let pool = db.pool();
    let run = start(pool, "f", json!(null)).await;
    drive(pool, "f", w, |t| json!(format!("{}-out", t.step_slug))).await;
    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"left": "left-out", "right": "right-out"}))
    );
}

#[tokio::test]
async fn flow_without_steps_completes_at_once_with_null_output() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('empty')").await;
    let run = start(pool, "empty", json!({"x": 1})).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, None);
}

#[tokio::test]
async fn duplicate_and_late_completions_change_nothing() {
    let (db, w) = with_flow("dup", "select pgflow.create_flow('dup'); select pgflow.add_step('dup', 'a'); select pgflow.add_step('dup', 'b', array['a']);").await;
    let pool = db.pool();
    let run = start(pool, "dup", json!({})).await;
    read_and_start(pool, "dup", w, 1).await;
    complete(pool, run, "a", 0, json!("first")).await;
    complete(pool, run, "a", 0, json!("second")).await;
    fail(pool, run, "a", 0, "late failure").await;
    let a = step_state(pool, run, "a").await;
    assert_eq!(
        (a.status.as_str(), a.output),
        ("completed", Some(json!("first")))
    );
    assert_eq!(remaining_steps(pool, run).await, 1);
    assert_eq!(step_state(pool, run, "b").await.remaining_deps, 0);
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.step_tasks where step_slug = 'b'"
        )
        .await,
        1
    );
    // Unknown task keys return no row.
    assert_eq!(complete(pool, run, "a", 7, json!(1)).await, None);
    assert_eq!(
        complete(pool, uuid::Uuid::new_v4(), "a", 0, json!(1)).await,
        None
    );
    // Completing a queued (not started) task changes nothing.
    assert_eq!(
        complete(pool, run, "b", 0, json!(1)).await.as_deref(),
        Some("queued")
    );
    assert_eq!(step_state(pool, run, "b").await.remaining_tasks, Some(1));
}

#[tokio::test]
async fn run_with_states_functions_return_the_run_and_its_steps() {
    let db = TestDb::new().await;
    let pool = db.pool();
    diamond(pool).await;
    let doc = scalar_json(
        pool,
        "select pgflow.start_flow_with_states('diamond', '{\"k\": 1}')",
    )
    .await
    .unwrap();
    assert_eq!(doc["run"]["status"], json!("started"));
    assert_eq!(doc["run"]["input"], json!({"k": 1}));
    assert_eq!(doc["steps"].as_array().unwrap().len(), 4);
    let run_id = doc["run"]["run_id"].as_str().unwrap().to_string();
    let again = scalar_json(
        pool,
        &format!("select pgflow.get_run_with_states('{run_id}')"),
    )
    .await
    .unwrap();
    assert_eq!(again["run"]["run_id"], json!(run_id));
    assert_eq!(
        scalar_json(pool, "select pgflow.get_run_with_states(gen_random_uuid())").await,
        None
    );
    exec(pool, "select pgflow.create_flow('nosteps')").await;
    let empty = scalar_json(
        pool,
        "select pgflow.start_flow_with_states('nosteps', '{}')",
    )
    .await
    .unwrap();
    assert_eq!(empty["steps"], json!([]));
}

#[tokio::test]
async fn maybe_complete_run_only_completes_a_started_run_with_nothing_left() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('f'); select pgflow.add_step('f', 'a');",
    )
    .await;
    let run = start(pool, "f", json!({})).await;
    exec(pool, &format!("select pgflow.maybe_complete_run('{run}')")).await;
    assert_eq!(run_status(pool, run).await, "started");
    let w = worker(pool, "f").await;
    read_and_start(pool, "f", w, 1).await;
    complete(pool, run, "a", 0, json!(1)).await;
    let completed_at = scalar_text(pool, "select completed_at::text from pgflow.runs").await;
    exec(pool, &format!("select pgflow.maybe_complete_run('{run}')")).await;
    assert_eq!(
        scalar_text(pool, "select completed_at::text from pgflow.runs").await,
        completed_at
    );
}

#[tokio::test]
async fn complete_tasks_batches_map_results_and_cascades_once() {
    let (db, w) = with_flow(
        "ct",
        "select pgflow.create_flow('ct'); select pgflow.add_step('ct', 'root');
         select pgflow.add_step('ct', 'each', step_type => 'map');
         select pgflow.add_step('ct', 'sum', array['each']);",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "ct", json!([1, 2, 3])).await;
    let tasks = read_and_start(pool, "ct", w, 10).await;
    assert_eq!(tasks.len(), 4);
    let batch: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            let out = if t.step_slug == "each" { json!(t.input.as_i64().unwrap() * 100) } else { json!("r") };
            json!({"run_id": t.run_id, "step_slug": t.step_slug, "task_index": t.task_index, "output": out})
        })
        .chain([json!({"run_id": run, "step_slug": "each", "task_index": 0, "output": "duplicate"})])
        .collect();
    let rows = scalar_i64(
        pool,
        &format!(
            "select count(*) from pgflow.complete_tasks('{}')",
            serde_json::Value::Array(batch)
        ),
    )
    .await;
    assert_eq!(
        rows, 4,
        "one row per distinct task: the duplicate report changes nothing"
    );
    assert_eq!(
        step_state(pool, run, "each").await.output,
        Some(json!([100, 200, 300]))
    );
    assert_eq!(step_state(pool, run, "root").await.output, Some(json!("r")));
    assert_eq!(
        live_messages(pool, "ct").await,
        1,
        "only sum's message is left"
    );
    let t = read_and_start(pool, "ct", w, 10).await;
    assert_eq!(t[0].input, json!({"each": [100, 200, 300]}));
}
