//! Conditions (required/forbidden input patterns, when_unmet) and exhaustion modes
//! (when_exhausted): what is skipped, what dependents see, and how the run ends.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;

#[tokio::test]
async fn an_unmet_condition_skips_one_branch_while_the_other_completes() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('c');
           select pgflow.add_step('c', 'fetch');
           select pgflow.add_step('c', 'vip', array['fetch'], required_input_pattern => '{"fetch": {"tier": "vip"}}');
           select pgflow.add_step('c', 'normal', array['fetch'], forbidden_input_pattern => '{"fetch": {"tier": "vip"}}');
           select pgflow.add_step('c', 'report', array['vip', 'normal']);"#,
    )
    .await;
    let w = worker(pool, "c").await;
    let run = start(pool, "c", json!({})).await;
    read_and_start(pool, "c", w, 10).await;
    complete(pool, run, "fetch", 0, json!({"tier": "std"})).await;
    let vip = step_state(pool, run, "vip").await;
    assert_eq!(
        (vip.status.as_str(), vip.skip_reason.as_deref()),
        ("skipped", Some("condition_unmet"))
    );
    let t = read_and_start(pool, "c", w, 10).await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].step_slug, "normal");
    complete(pool, run, "normal", 0, json!("n")).await;
    // The skipped dependency is absent from the fan-in input, not null.
    let t = read_and_start(pool, "c", w, 10).await;
    assert_eq!(t[0].input, json!({"normal": "n"}));
    complete(pool, run, "report", 0, json!("r")).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"report": "r"})));
}

#[tokio::test]
async fn root_conditions_check_the_run_input() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('r');
           select pgflow.add_step('r', 'only_eu', required_input_pattern => '{"region": "eu"}');
           select pgflow.add_step('r', 'always');"#,
    )
    .await;
    let us = start(pool, "r", json!({"region": "us"})).await;
    assert_eq!(step_state(pool, us, "only_eu").await.status, "skipped");
    assert_eq!(remaining_steps(pool, us).await, 1);
    let eu = start(pool, "r", json!({"region": "eu", "x": 1})).await;
    assert_eq!(step_state(pool, eu, "only_eu").await.status, "started");
}

#[tokio::test]
async fn when_unmet_fail_fails_the_run() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('f');
           select pgflow.add_step('f', 'other');
           select pgflow.add_step('f', 'strict', required_input_pattern => '{"ok": true}', when_unmet => 'fail');"#,
    )
    .await;
    let run = sqlx::query_scalar::<_, String>(
        "select status from pgflow.start_flow('f', '{\"ok\": false}')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(run, "failed");
    let strict = scalar_text(
        pool,
        "select status || ':' || error_message from pgflow.step_states where step_slug = 'strict'",
    )
    .await;
    assert_eq!(strict.as_deref(), Some("failed:Condition not met"));
    assert_eq!(live_messages(pool, "f").await, 0);
}

#[tokio::test]
async fn skip_cascade_skips_three_levels_of_dependents() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('sc');
           select pgflow.add_step('sc', 'gate', required_input_pattern => '{"go": true}', when_unmet => 'skip-cascade');
           select pgflow.add_step('sc', 'l1', array['gate']);
           select pgflow.add_step('sc', 'l2', array['l1'], step_type => 'map');
           select pgflow.add_step('sc', 'l3', array['l2']);
           select pgflow.add_step('sc', 'independent');"#,
    )
    .await;
    let w = worker(pool, "sc").await;
    let run = start(pool, "sc", json!({"go": false})).await;
    assert_eq!(
        step_state(pool, run, "gate").await.skip_reason.as_deref(),
        Some("condition_unmet")
    );
    for s in ["l1", "l2", "l3"] {
        let st = step_state(pool, run, s).await;
        assert_eq!(
            (st.status.as_str(), st.skip_reason.as_deref()),
            ("skipped", Some("dependency_skipped")),
            "{s}"
        );
    }
    assert_eq!(remaining_steps(pool, run).await, 1);
    read_and_start(pool, "sc", w, 10).await;
    complete(pool, run, "independent", 0, json!(1)).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"independent": 1})));
}

#[tokio::test]
async fn a_run_whose_remaining_steps_are_all_skipped_completes() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('all');
           select pgflow.add_step('all', 'a', required_input_pattern => '{"never": 1}', when_unmet => 'skip-cascade');
           select pgflow.add_step('all', 'b', array['a']);"#,
    )
    .await;
    let run = start(pool, "all", json!({})).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, None);
}

#[tokio::test]
async fn plain_skip_lets_dependents_run_without_the_skipped_input() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('p');
           select pgflow.add_step('p', 'maybe', required_input_pattern => '{"x": 1}');
           select pgflow.add_step('p', 'each', array['maybe'], step_type => 'map');
           select pgflow.add_step('p', 'after', array['maybe']);"#,
    )
    .await;
    let w = worker(pool, "p").await;
    let run = start(pool, "p", json!({})).await;
    // The map child of a skipped parent has nothing to map over.
    let each = step_state(pool, run, "each").await;
    assert_eq!(
        (each.status.as_str(), each.initial_tasks),
        ("completed", Some(0))
    );
    let t = read_and_start(pool, "p", w, 10).await;
    assert_eq!(
        (t[0].step_slug.as_str(), &t[0].input),
        ("after", &json!({}))
    );
}

#[tokio::test]
async fn a_condition_reached_through_the_taskless_cascade_is_evaluated() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('t');
           select pgflow.add_step('t', 'items', step_type => 'map');
           select pgflow.add_step('t', 'guarded', array['items'], required_input_pattern => '{"items": [1]}');"#,
    )
    .await;
    let run = start(pool, "t", json!([])).await;
    let g = step_state(pool, run, "guarded").await;
    assert_eq!(
        (g.status.as_str(), g.skip_reason.as_deref()),
        ("skipped", Some("condition_unmet"))
    );
    assert_eq!(run_status(pool, run).await, "completed");
}

#[tokio::test]
async fn when_exhausted_skip_lets_the_run_complete() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('x', max_attempts => 1);
           select pgflow.add_step('x', 'optional', when_exhausted => 'skip');
           select pgflow.add_step('x', 'main');
           select pgflow.add_step('x', 'after', array['optional', 'main']);"#,
    )
    .await;
    let w = worker(pool, "x").await;
    let run = start(pool, "x", json!({})).await;
    read_and_start(pool, "x", w, 10).await;
    fail(pool, run, "optional", 0, "service down").await;
    let o = step_state(pool, run, "optional").await;
    assert_eq!(
        (
            o.status.as_str(),
            o.skip_reason.as_deref(),
            o.error_message.as_deref()
        ),
        ("skipped", Some("handler_failed"), Some("service down"))
    );
    complete(pool, run, "main", 0, json!("m")).await;
    let t = read_and_start(pool, "x", w, 10).await;
    assert_eq!(t[0].input, json!({"main": "m"}));
    complete(pool, run, "after", 0, json!("done")).await;
    assert_eq!(run_status(pool, run).await, "completed");
}

#[tokio::test]
async fn when_exhausted_skip_cascade_skips_dependents_and_archives_map_siblings() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        r#"select pgflow.create_flow('y', max_attempts => 1);
           select pgflow.add_step('y', 'each', step_type => 'map', when_exhausted => 'skip-cascade');
           select pgflow.add_step('y', 'sum', array['each']);
           select pgflow.add_step('y', 'other');"#,
    )
    .await;
    let w = worker(pool, "y").await;
    let run = start(pool, "y", json!([1, 2, 3])).await;
    read_and_start(pool, "y", w, 2).await;
    fail(pool, run, "each", 0, "bad element").await;
    assert_eq!(
        step_state(pool, run, "sum").await.skip_reason.as_deref(),
        Some("dependency_skipped")
    );
    // Only `other`'s message may remain: the map's other messages were archived.
    let live = scalar_text(
        pool,
        "select string_agg(t.step_slug, ',') from pgmq.q_y q join pgflow.step_tasks t on t.message_id = q.msg_id",
    )
    .await;
    assert_eq!(live.as_deref(), Some("other"));
    // A late completion for the skipped map changes nothing.
    complete(pool, run, "each", 1, json!(1)).await;
    assert_eq!(step_state(pool, run, "each").await.status, "skipped");
    let t = read_and_start(pool, "y", w, 10).await;
    assert_eq!(t.len(), 1);
    complete(pool, run, "other", 0, json!("o")).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"other": "o"})));
}

/// `skip_reason` is free text as upstream has it (tools that skip steps by hand
/// write their own reasons), but a reason still goes exactly with status `skipped`.
#[tokio::test]
async fn a_step_may_be_skipped_by_hand_with_any_reason_but_only_consistently() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('h');
         select pgflow.add_step('h', 'first');
         select pgflow.add_step('h', 'second', array['first']);",
    )
    .await;
    let run = start(pool, "h", json!({})).await;
    assert_eq!(step_state(pool, run, "second").await.status, "created");

    exec(
        pool,
        &format!(
            "update pgflow.step_states set status = 'skipped', skip_reason = 'manual', skipped_at = now()
              where run_id = '{run}' and step_slug = 'second'"
        ),
    )
    .await;
    let second = step_state(pool, run, "second").await;
    assert_eq!(
        (second.status.as_str(), second.skip_reason.as_deref()),
        ("skipped", Some("manual"))
    );

    let no_reason = expect_error(
        pool,
        &format!(
            "update pgflow.step_states set skip_reason = null
              where run_id = '{run}' and step_slug = 'second'"
        ),
    )
    .await;
    assert_eq!(no_reason.code, "23514", "{no_reason:?}");
    assert_eq!(
        no_reason.constraint.as_deref(),
        Some("skip_reason_matches_status")
    );
    let not_skipped = expect_error(
        pool,
        &format!(
            "update pgflow.step_states set skip_reason = 'manual'
              where run_id = '{run}' and step_slug = 'first'"
        ),
    )
    .await;
    assert_eq!(
        not_skipped.constraint.as_deref(),
        Some("skip_reason_matches_status"),
        "{not_skipped:?}"
    );
}
