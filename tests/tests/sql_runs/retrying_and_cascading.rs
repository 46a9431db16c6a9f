//! retry_run after the failures that have no failed task to retry by the usual rules (an
//! unmet condition in fail mode, a type violation), and the taskless cascade with its
//! 50-wave safety limit.

use serde_json::json;

use super::fixtures::with_flow;
use crate::common::*;

async fn retry(pool: &sqlx::PgPool, run: uuid::Uuid) -> bool {
    sqlx::query_scalar("select pgflow.retry_run($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn retry_run_after_an_unmet_condition_evaluates_it_again_and_keeps_completed_outputs() {
    let (db, w) = with_flow(
        "cond",
        "select pgflow.create_flow('cond');
         select pgflow.add_step('cond', 'a');
         select pgflow.add_step('cond', 'b', array['a'],
           required_input_pattern => '{\"a\": {\"ok\": true}}', when_unmet => 'fail');",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "cond", json!({})).await;
    assert_eq!(read_and_start(pool, "cond", w, 10).await.len(), 1);
    complete(pool, run, "a", 0, json!({"ok": false})).await;
    assert_eq!(run_status(pool, run).await, "failed");
    assert_eq!(step_state(pool, run, "b").await.status, "failed");

    // The condition is evaluated afresh on the same stored input: it fails again, the same
    // way, and a's output survives both rounds.
    assert!(retry(pool, run).await);
    assert_eq!(run_status(pool, run).await, "failed");
    let b = step_state(pool, run, "b").await;
    assert_eq!((b.status.as_str(), b.remaining_tasks), ("failed", None));
    let a = step_state(pool, run, "a").await;
    assert_eq!(
        (a.status.as_str(), a.output),
        ("completed", Some(json!({"ok": false})))
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.step_tasks where step_slug = 'b'"
        )
        .await,
        0
    );
    assert_eq!(live_messages(pool, "cond").await, 0);

    // Fix the data the condition reads (an operator's repair), and the retry goes through.
    exec(
        pool,
        "update pgflow.step_states set output = '{\"ok\": true}' where step_slug = 'a';
         update pgflow.step_tasks set output = '{\"ok\": true}' where step_slug = 'a'",
    )
    .await;
    assert!(retry(pool, run).await);
    assert_eq!(step_state(pool, run, "b").await.status, "started");
    let t = read_and_start(pool, "cond", w, 10).await;
    assert_eq!(
        (t.len(), t[0].input.clone()),
        (1, json!({"a": {"ok": true}}))
    );
    complete(pool, run, "b", 0, json!("b done")).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"b": "b done"})));
}

#[tokio::test]
async fn retry_run_after_a_type_violation_reruns_the_step_with_fresh_attempts() {
    let (db, w) = with_flow(
        "tv",
        "select pgflow.create_flow('tv', max_attempts => 1);
         select pgflow.add_step('tv', 'a');
         select pgflow.add_step('tv', 'm', array['a'], step_type => 'map');",
    )
    .await;
    let pool = db.pool();
    let run = start(pool, "tv", json!({})).await;
    assert_eq!(read_and_start(pool, "tv", w, 10).await.len(), 1);
    assert_eq!(
        complete(pool, run, "a", 0, json!({"not": "an array"}))
            .await
            .as_deref(),
        Some("failed")
    );
    assert_eq!(run_status(pool, run).await, "failed");
    let a = step_state(pool, run, "a").await;
    assert!(
        a.error_message
            .as_deref()
            .unwrap_or("")
            .starts_with("[TYPE_VIOLATION]"),
        "{a:?}"
    );

    assert!(retry(pool, run).await);
    let (status, attempts): (String, i32) = sqlx::query_as(
        "select status, attempts_count from pgflow.step_tasks where step_slug = 'a'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 0));
    assert_eq!(read_and_start(pool, "tv", w, 10).await.len(), 1);
    complete(pool, run, "a", 0, json!([1, 2])).await;
    let tasks = read_and_start(pool, "tv", w, 10).await;
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        complete(
            pool,
            run,
            "m",
            t.task_index,
            json!(t.input.as_i64().unwrap() * 10),
        )
        .await;
    }
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"m": [10, 20]})));
    assert_eq!(live_messages(pool, "tv").await, 0);
}

/// `chain`: a root map `m00` over the run input, then `n - 1` maps each over the previous.
fn empty_map_chain(flow: &str, n: usize) -> String {
    let mut sql = format!("select pgflow.create_flow('{flow}');");
    for i in 0..n {
        let deps = if i == 0 {
            "'{}'::text[]".to_string()
        } else {
            format!("array['m{:02}']", i - 1)
        };
        sql.push_str(&format!(
            "select pgflow.add_step('{flow}', 'm{i:02}', {deps}, step_type => 'map');"
        ));
    }
    sql
}

#[tokio::test]
async fn a_chain_of_49_empty_maps_completes_in_one_call_and_50_hit_the_wave_limit() {
    let (db, _) = with_flow("ok49", &empty_map_chain("ok49", 49)).await;
    let pool = db.pool();
    // add_step refuses a 50th link now; a flow defined before that check (kept
    // through an upgrade) can still have one, and the cascade must stop there too.
    exec(pool, &empty_map_chain("deep50", 49)).await;
    exec(
        pool,
        "insert into pgflow.steps (flow_slug, step_slug, step_type, step_index, deps_count)
           values ('deep50', 'm49', 'map', 49, 1);
         insert into pgflow.deps (flow_slug, dep_slug, step_slug) values ('deep50', 'm48', 'm49')",
    )
    .await;

    // 49 waves, then one that finds nothing: within the 50 iterations.
    let run = start(pool, "ok49", json!([])).await;
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(run_output(pool, run).await, Some(json!({"m48": []})));

    let runs_before = scalar_i64(pool, "select count(*) from pgflow.runs").await;
    let e = expect_error(pool, "select pgflow.start_flow('deep50', '[]')").await;
    assert_eq!(e.code, "P0001", "{e:?}");
    assert_eq!(
        e.message,
        "Cascade loop exceeded safety limit of 50 iterations"
    );
    // The failed start rolled back: no run, no state, no message.
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.runs").await,
        runs_before
    );
    assert_eq!(live_messages(pool, "deep50").await, 0);
}

#[tokio::test]
async fn cascade_complete_taskless_steps_completes_ready_taskless_steps_wave_by_wave() {
    // White-box: `a` is still running when m00 is made ready and taskless by hand, so the
    // function itself (not start_flow's cascade) has the chain to complete.
    let mut sql =
        "select pgflow.create_flow('casc'); select pgflow.add_step('casc', 'a');".to_string();
    for (i, dep) in ["a", "m00", "m01"].iter().enumerate() {
        sql.push_str(&format!(
            "select pgflow.add_step('casc', 'm{i:02}', array['{dep}'], step_type => 'map');"
        ));
    }
    let (db, _) = with_flow("casc", &sql).await;
    let pool = db.pool();
    let run = start(pool, "casc", json!({})).await;
    exec(
        pool,
        "update pgflow.step_states set remaining_deps = 0, initial_tasks = 0 where step_slug = 'm00'",
    )
    .await;
    let waves: i32 = sqlx::query_scalar("select pgflow.cascade_complete_taskless_steps($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(waves, 3, "m00, m01 and m02, one wave each");
    for s in ["m00", "m01", "m02"] {
        let st = step_state(pool, run, s).await;
        assert_eq!(
            (st.status.as_str(), st.output),
            ("completed", Some(json!([]))),
            "{s}"
        );
    }
    assert_eq!(step_state(pool, run, "a").await.status, "started");
    assert_eq!(remaining_steps(pool, run).await, 1);
    // Nothing left to cascade: a no-op; and a no-op on a run that is not started.
    let again: i32 = sqlx::query_scalar("select pgflow.cascade_complete_taskless_steps($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(again, 0);
    exec(pool, &format!("select pgflow.cancel_run('{run}')")).await;
    let on_cancelled: i32 = sqlx::query_scalar("select pgflow.cascade_complete_taskless_steps($1)")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(on_cancelled, 0);
}
