//! Running flows through the SQL API alone: start_flow, start_tasks, complete_task,
//! fail_task and the cascade helpers, as a worker (or a person at psql) drives them.

mod common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;

async fn diamond(pool: &sqlx::PgPool) {
    exec(
        pool,
        "select pgflow.create_flow('diamond');
         select pgflow.add_step('diamond', 'a');
         select pgflow.add_step('diamond', 'b', array['a']);
         select pgflow.add_step('diamond', 'c', array['a']);
         select pgflow.add_step('diamond', 'd', array['b', 'c']);",
    )
    .await;
}

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
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('f'); select pgflow.add_step('f', 'root');
         select pgflow.add_step('f', 'left', array['root']); select pgflow.add_step('f', 'right', array['root']);",
    )
    .await;
    let w = worker(pool, "f").await;
    let run = start(pool, "f", json!(null)).await;
    drive(pool, "f", w, |t| json!(format!("{}-out", t.step_slug))).await;
    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"left": "left-out", "right": "right-out"}))
    );
}

#[tokio::test]
async fn start_tasks_moves_visibility_to_step_timeout_plus_margin() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('vt', timeout => 60);
         select pgflow.add_step('vt', 'quick');
         select pgflow.add_step('vt', 'slow', timeout => 300);",
    )
    .await;
    let w = worker(pool, "vt").await;
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
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('f'); select pgflow.add_step('f', 'a');",
    )
    .await;
    let w = worker(pool, "f").await;
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
async fn root_map_runs_one_task_per_element_and_aggregates_in_index_order() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'sq', step_type => 'map');
         select pgflow.add_step('m', 'sum', array['sq']);",
    )
    .await;
    let w = worker(pool, "m").await;
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
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'list');
         select pgflow.add_step('m', 'each', array['list'], step_type => 'map');
         select pgflow.add_step('m', 'again', array['each'], step_type => 'map');",
    )
    .await;
    let w = worker(pool, "m").await;
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
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('e'); select pgflow.add_step('e', 'm1', step_type => 'map');
         select pgflow.add_step('e', 'm2', array['m1'], step_type => 'map');
         select pgflow.add_step('e', 'after', array['m2']);",
    )
    .await;
    let w = worker(pool, "e").await;
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
async fn flow_without_steps_completes_at_once_with_null_output() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('empty')").await;
    let run = start(pool, "empty", json!({"x": 1})).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, None);
}

#[tokio::test]
async fn start_flow_refuses_bad_input_without_writing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'each', step_type => 'map');",
    )
    .await;
    let e = expect_error(pool, "select pgflow.start_flow('m', '{\"a\":1}')").await;
    assert_eq!(
        e.message,
        "Flow m has root map steps but input is not an array (got object)"
    );
    let e = expect_error(pool, "select pgflow.start_flow('m', 'null'::jsonb)").await;
    assert_eq!(
        e.message,
        "Flow m has root map steps but input is not an array (got null)"
    );
    let e = expect_error(pool, "select pgflow.start_flow('m', NULL)").await;
    assert_eq!(e.message, "Flow m has root map steps but input is NULL");
    let e = expect_error(pool, "select pgflow.start_flow('ghost', '{}')").await;
    assert_eq!(e.constraint.as_deref(), Some("runs_flow_slug_fkey"));
    assert!(e.detail.contains("ghost"), "{e:?}");
    exec(
        pool,
        "select pgflow.create_flow('s'); select pgflow.add_step('s', 'a');",
    )
    .await;
    let e = expect_error(pool, "select pgflow.start_flow('s', NULL)").await;
    assert_eq!(e.code, "23502");
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.runs").await,
        0
    );
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.step_states").await,
        0
    );
    assert_eq!(
        live_messages(pool, "m").await + live_messages(pool, "s").await,
        0
    );

    // A caller-chosen run id is used, and reusing it is refused.
    exec(
        pool,
        "select pgflow.start_flow('s', '{}', '00000000-0000-0000-0000-0000000000aa')",
    )
    .await;
    let e = expect_error(
        pool,
        "select pgflow.start_flow('s', '{}', '00000000-0000-0000-0000-0000000000aa')",
    )
    .await;
    assert_eq!(e.code, "23505");
}

#[tokio::test]
async fn start_delay_postpones_only_the_first_delivery() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('d'); select pgflow.add_step('d', 'later', start_delay => 30);",
    )
    .await;
    let w = worker(pool, "d").await;
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
async fn failed_attempts_retry_with_exponential_backoff_then_fail_the_run() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('r', max_attempts => 3, base_delay => 2);
         select pgflow.add_step('r', 'flaky'); select pgflow.add_step('r', 'other');
         select pgflow.add_step('r', 'after', array['flaky']);",
    )
    .await;
    let w = worker(pool, "r").await;
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
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('o', max_attempts => 5, base_delay => 1);
         select pgflow.add_step('o', 'once', max_attempts => 1);",
    )
    .await;
    let w = worker(pool, "o").await;
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

#[tokio::test]
async fn duplicate_and_late_completions_change_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('dup'); select pgflow.add_step('dup', 'a'); select pgflow.add_step('dup', 'b', array['a']);").await;
    let w = worker(pool, "dup").await;
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
async fn a_single_step_feeding_a_map_with_a_non_array_fails_the_run() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('tv'); select pgflow.add_step('tv', 'list');
         select pgflow.add_step('tv', 'side');
         select pgflow.add_step('tv', 'each', array['list'], step_type => 'map');",
    )
    .await;
    let w = worker(pool, "tv").await;
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
async fn helper_functions_behave_as_specified() {
    let db = TestDb::new().await;
    let pool = db.pool();
    for (base, attempts, expected) in [
        (2, 1, 4),
        (2, 2, 8),
        (2, 3, 16),
        (5, 1, 10),
        (0, 4, 0),
        (1, 40, i32::MAX as i64),
    ] {
        let got = scalar_i64(
            pool,
            &format!("select pgflow.calculate_retry_delay({base}, {attempts})::bigint"),
        )
        .await;
        assert_eq!(got, expected, "calculate_retry_delay({base}, {attempts})");
    }

    exec(
        pool,
        "select pgmq.create('vtq'); select pgmq.send('vtq', '{}'); select pgmq.send('vtq', '{}');",
    )
    .await;
    let n = scalar_i64(
        pool,
        "select count(*) from pgflow.set_vt_batch('vtq', array[1, 2]::bigint[], array[100, 200])",
    )
    .await;
    assert_eq!(n, 2);
    let vts = scalar_text(
        pool,
        "select string_agg(round(extract(epoch from vt - clock_timestamp()) / 100)::text, ',' order by msg_id) from pgmq.q_vtq",
    )
    .await;
    assert_eq!(vts.as_deref(), Some("1,2"));
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.set_vt_batch('vtq', '{}', '{}')"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.set_vt_batch('vtq', NULL, NULL)"
        )
        .await,
        0
    );
    let e = expect_error(
        pool,
        "select * from pgflow.set_vt_batch('vtq', array[1]::bigint[], array[1, 2])",
    )
    .await;
    assert_eq!(
        e.message,
        "msg_ids length (1) must equal vt_offsets length (2)"
    );
    let e = expect_error(
        pool,
        "select * from pgflow.set_vt_batch('no_such_queue', array[1]::bigint[], array[1])",
    )
    .await;
    assert_eq!(e.code, "42P01");

    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.poll_for_tasks('vtq', 5, 10)"
        )
        .await,
        0
    );

    let w = worker(pool, "vtq").await;
    exec(pool, &format!("select pgflow.mark_worker_stopped('{w}')")).await;
    assert_eq!(
        scalar_i64(pool, &format!("select count(*) from pgflow.workers where worker_id = '{w}' and stopped_at is not null")).await,
        1
    );
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
async fn a_thousand_element_map_runs_to_completion_through_sql() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('big'); select pgflow.add_step('big', 'double', step_type => 'map');
         select pgflow.add_step('big', 'total', array['double']);",
    )
    .await;
    let w = worker(pool, "big").await;
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

#[tokio::test]
async fn claim_tasks_is_idempotent_per_claim_id() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('cl'); select pgflow.add_step('cl', 'each', step_type => 'map');").await;
    let w = worker(pool, "cl").await;
    let run = start(pool, "cl", json!([10, 20, 30])).await;
    let claim = uuid::Uuid::new_v4();
    let claim_sql = "select * from pgflow.claim_tasks('cl', $1, $2, 2)";
    let first: Vec<Task> = sqlx::query(claim_sql)
        .bind(w)
        .bind(claim)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(task_from_row)
        .collect();
    assert_eq!(first.len(), 2);
    // The reply was "lost": the same call with the same claim id returns the same tasks, reads nothing new.
    let again: Vec<Task> = sqlx::query(claim_sql)
        .bind(w)
        .bind(claim)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(task_from_row)
        .collect();
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
    let next: Vec<Task> = sqlx::query(claim_sql)
        .bind(w)
        .bind(uuid::Uuid::new_v4())
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(task_from_row)
        .collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].input, json!(30));
    // Completed tasks are not replayed.
    for t in &first {
        complete(pool, run, "each", t.task_index, json!(1)).await;
    }
    let replay: Vec<Task> = sqlx::query(claim_sql)
        .bind(w)
        .bind(claim)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(task_from_row)
        .collect();
    assert!(replay.is_empty());
    let e = expect_error(
        pool,
        "select * from pgflow.claim_tasks('cl', gen_random_uuid(), NULL, 1)",
    )
    .await;
    assert!(e.message.contains("claim_id"), "{e:?}");
}

#[tokio::test]
async fn complete_tasks_batches_map_results_and_cascades_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('ct'); select pgflow.add_step('ct', 'root');
         select pgflow.add_step('ct', 'each', step_type => 'map');
         select pgflow.add_step('ct', 'sum', array['each']);",
    )
    .await;
    let w = worker(pool, "ct").await;
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
