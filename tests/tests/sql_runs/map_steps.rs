//! Map steps: one task per array element, counts from the parent, empty arrays and
//! arrays that are not arrays.

use serde_json::json;

use super::fixtures::with_flow;
use crate::common::*;

#[tokio::test]
async fn root_map_runs_one_task_per_element_and_aggregates_in_index_order() {
    let (db, w) = with_flow(
        "m",
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'sq', step_type => 'map');
         select pgflow.add_step('m', 'sum', array['sq']);",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "m", json!([3, 1, 2, null])).await;
    assert_eq!(step_state(pool, run, "sq").await.initial_tasks, Some(4));
    let mut tasks = read_and_start(pool, "m", w, 10).await;
    assert_eq!(tasks.len(), 4);
    // Complete out of order: the aggregate still follows task_index.
    tasks.reverse();
    for t in &tasks {
        let out = if t.input.is_null() {
            json!(null)
        } else {
            json!(t.input.as_i64().unwrap().pow(2))
        };
        complete(pool, run, "sq", t.task_index, out).await;
    }
    assert_eq!(
        step_state(pool, run, "sq").await.output,
        Some(json!([9, 1, 4, null]))
    );
    let t = read_and_start(pool, "m", w, 10).await;
    assert_eq!(t[0].input, json!({"sq": [9, 1, 4, null]}));
    complete(pool, run, "sum", 0, json!(14)).await;
    assert_eq!(run_output(pool, run).await, Some(json!({"sum": 14})));
}

#[tokio::test]
async fn dependent_map_gets_its_count_from_the_parent_array() {
    let (db, w) = with_flow(
        "m",
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'list');
         select pgflow.add_step('m', 'each', array['list'], step_type => 'map');
         select pgflow.add_step('m', 'again', array['each'], step_type => 'map');",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "m", json!({})).await;
    assert_eq!(step_state(pool, run, "each").await.initial_tasks, None);
    let t = read_and_start(pool, "m", w, 10).await;
    complete(pool, run, "list", t[0].task_index, json!(["x", "y", "z"])).await;
    assert_eq!(step_state(pool, run, "each").await.initial_tasks, Some(3));
    let tasks = read_and_start(pool, "m", w, 10).await;
    let mut inputs: Vec<_> = tasks
        .iter()
        .map(|t| (t.task_index, t.input.clone()))
        .collect();
    inputs.sort_by_key(|x| x.0);
    assert_eq!(
        inputs,
        vec![(0, json!("x")), (1, json!("y")), (2, json!("z"))]
    );
    for t in &tasks {
        complete(
            pool,
            run,
            "each",
            t.task_index,
            json!(format!("{}!", t.input.as_str().unwrap())),
        )
        .await;
    }
    // A map after a map takes the parent's task count.
    assert_eq!(step_state(pool, run, "again").await.initial_tasks, Some(3));
    drive(pool, "m", w, |t| t.input.clone()).await;
    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"again": ["x!", "y!", "z!"]}))
    );
}

#[tokio::test]
async fn empty_arrays_complete_maps_without_tasks_and_cascade() {
    let (db, w) = with_flow(
        "e",
        "select pgflow.create_flow('e'); select pgflow.add_step('e', 'm1', step_type => 'map');
         select pgflow.add_step('e', 'm2', array['m1'], step_type => 'map');
         select pgflow.add_step('e', 'after', array['m2']);",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "e", json!([])).await;
    let m1 = step_state(pool, run, "m1").await;
    assert_eq!(
        (m1.status.as_str(), m1.output.clone()),
        ("completed", Some(json!([])))
    );
    assert_eq!(step_state(pool, run, "m2").await.output, Some(json!([])));
    let t = read_and_start(pool, "e", w, 10).await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].input, json!({"m2": []}));
    complete(pool, run, "after", 0, json!("done")).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.step_tasks where step_slug <> 'after'"
        )
        .await,
        0
    );

    // A dependent map whose parent produced [] also completes without tasks.
    exec(
        pool,
        "select pgflow.create_flow('e2'); select pgflow.add_step('e2', 'list');
         select pgflow.add_step('e2', 'each', array['list'], step_type => 'map');",
    )
    .await;
    let w2 = worker(pool, "e2").await;
    let run2 = start(pool, "e2", json!({})).await;
    read_and_start(pool, "e2", w2, 1).await;
    complete(pool, run2, "list", 0, json!([])).await;
    assert_eq!(run_status(pool, run2).await, "completed");
    assert_eq!(run_output(pool, run2).await, Some(json!({"each": []})));
}

#[tokio::test]
async fn a_single_step_feeding_a_map_with_a_non_array_fails_the_run() {
    let (db, w) = with_flow(
        "tv",
        "select pgflow.create_flow('tv'); select pgflow.add_step('tv', 'list');
         select pgflow.add_step('tv', 'side');
         select pgflow.add_step('tv', 'each', array['list'], step_type => 'map');",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "tv", json!({})).await;
    read_and_start(pool, "tv", w, 10).await;
    assert_eq!(
        complete(pool, run, "list", 0, json!({"not": "array"}))
            .await
            .as_deref(),
        Some("failed")
    );
    assert_eq!(run_status(pool, run).await, "failed");
    let list = step_state(pool, run, "list").await;
    assert_eq!(list.status, "failed");
    assert_eq!(
        list.error_message.as_deref(),
        Some("[TYPE_VIOLATION] Map step each expects array input but dependency list produced object")
    );
    let task_err = scalar_text(
        pool,
        "select error_message from pgflow.step_tasks where step_slug = 'list'",
    )
    .await;
    assert_eq!(
        task_err.as_deref(),
        Some("[TYPE_VIOLATION] Produced object instead of array")
    );
    assert_eq!(live_messages(pool, "tv").await, 0);
}

#[tokio::test]
async fn a_thousand_element_map_runs_to_completion_through_sql() {
    let (db, w) = with_flow("big", "select pgflow.create_flow('big'); select pgflow.add_step('big', 'double', step_type => 'map');
         select pgflow.add_step('big', 'total', array['double']);").await;
    let pool = db.pool();
    let input: Vec<i64> = (1..=1000).collect();
    let run = start(pool, "big", json!(input)).await;
    let done = drive(pool, "big", w, |t| match t.step_slug.as_str() {
        "double" => json!(t.input.as_i64().unwrap() * 2),
        _ => json!(t.input["double"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>()),
    })
    .await;
    assert_eq!(done, 1001);
    assert_eq!(run_output(pool, run).await, Some(json!({"total": 1001000})));
    assert_eq!(live_messages(pool, "big").await, 0);
}
