//! Flow shapes and compilation: _get_flow_shape, _compare_flow_shapes,
//! _create_flow_from_shape, ensure_flow_compiled, delete_flow_and_data.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;

fn shape() -> serde_json::Value {
    json!({
        "options": {"maxAttempts": 4, "baseDelay": 2, "timeout": 30},
        "steps": [
            {"slug": "fetch", "stepType": "single", "dependencies": [], "whenUnmet": "skip", "whenExhausted": "fail",
             "requiredInputPattern": {"defined": false}, "forbiddenInputPattern": {"defined": false}},
            {"slug": "each", "stepType": "map", "dependencies": ["fetch"], "whenUnmet": "skip", "whenExhausted": "skip",
             "requiredInputPattern": {"defined": true, "value": {"fetch": {"ok": true}}},
             "forbiddenInputPattern": {"defined": false}, "options": {"timeout": 120, "startDelay": 3}}
        ]
    })
}

async fn ensure(
    pool: &sqlx::PgPool,
    slug: &str,
    shape: &serde_json::Value,
    allow: bool,
) -> serde_json::Value {
    sqlx::query_scalar("select pgflow.ensure_flow_compiled($1, $2, $3)")
        .bind(slug)
        .bind(shape)
        .bind(allow)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn ensure_flow_compiled_compiles_verifies_and_reports_drift() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let s = shape();
    assert_eq!(
        ensure(pool, "shop", &s, false).await,
        json!({"status": "compiled", "differences": []})
    );
    let opts = scalar_text(
        pool,
        "select format('%s/%s/%s', opt_max_attempts, opt_base_delay, opt_timeout) from pgflow.flows",
    )
    .await;
    assert_eq!(opts.as_deref(), Some("4/2/30"));
    let each = scalar_text(
        pool,
        "select format('%s/%s/%s/%s', step_type, opt_timeout, opt_start_delay, when_exhausted) from pgflow.steps where step_slug = 'each'",
    )
    .await;
    assert_eq!(each.as_deref(), Some("map/120/3/skip"));

    // The stored shape is the definition minus options.
    let mut expected = s.clone();
    expected.as_object_mut().unwrap().remove("options");
    expected["steps"][1]
        .as_object_mut()
        .unwrap()
        .remove("options");
    assert_eq!(
        scalar_json(pool, "select pgflow._get_flow_shape('shop')").await,
        Some(expected)
    );
    assert_eq!(
        scalar_json(pool, "select pgflow._get_flow_shape('nope')").await,
        Some(json!({"steps": []}))
    );

    // Options are not structure.
    let mut tuned = s.clone();
    tuned["options"]["maxAttempts"] = json!(9);
    assert_eq!(
        ensure(pool, "shop", &tuned, false).await["status"],
        json!("verified")
    );

    let run = start(pool, "shop", json!({})).await;
    let mut drifted = s.clone();
    drifted["steps"][1]["stepType"] = json!("single");
    drifted["steps"][1]["dependencies"] = json!(["fetch", "zzz"]);
    let r = ensure(pool, "shop", &drifted, false).await;
    assert_eq!(r["status"], json!("mismatch"));
    assert_eq!(
        r["differences"],
        json!([
            "Step at index 1: type differs 'single' vs 'map'",
            "Step at index 1: dependencies differ [fetch, zzz] vs [fetch]"
        ])
    );
    assert_eq!(
        run_status(pool, run).await,
        "started",
        "a mismatch changes nothing"
    );

    // With data loss allowed the flow and its runs are replaced.
    let mut smaller = s.clone();
    smaller["steps"].as_array_mut().unwrap().pop();
    let r = ensure(pool, "shop", &smaller, true).await;
    assert_eq!(r["status"], json!("recompiled"));
    assert_eq!(
        r["differences"],
        json!([
            "Step count differs: 1 vs 2",
            "Step at index 1: missing in first shape (second has 'each')"
        ])
    );
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.runs").await,
        0
    );
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.steps").await,
        1
    );

    // On a development database (pgflow.is_local) drift recompiles too.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("set pgflow.is_local = 'true'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let r: serde_json::Value = sqlx::query_scalar("select pgflow.ensure_flow_compiled('shop', $1)")
        .bind(&s)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(r["status"], json!("recompiled"));
}

#[tokio::test]
async fn compare_flow_shapes_names_each_difference() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let a = json!({"steps": [
        {"slug": "a", "stepType": "single", "dependencies": [], "whenUnmet": "skip", "whenExhausted": "fail",
         "requiredInputPattern": {"defined": false}, "forbiddenInputPattern": {"defined": false}}]});
    let mut b = a.clone();
    b["steps"][0]["whenUnmet"] = json!("fail");
    b["steps"][0]["whenExhausted"] = json!("skip-cascade");
    b["steps"][0]["requiredInputPattern"] = json!({"defined": true, "value": {"x": 1}});
    let diffs: Vec<String> =
        sqlx::query_scalar("select unnest(pgflow._compare_flow_shapes($1, $2))")
            .bind(&a)
            .bind(&b)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        diffs,
        [
            "Step at index 0: whenUnmet differs 'skip' vs 'fail'",
            "Step at index 0: whenExhausted differs 'fail' vs 'skip-cascade'",
            "Step at index 0: requiredInputPattern differs '{\"defined\": false}' vs '{\"value\": {\"x\": 1}, \"defined\": true}'"
        ]
    );
    let same: Vec<String> =
        sqlx::query_scalar("select unnest(pgflow._compare_flow_shapes($1, $1))")
            .bind(&a)
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(same.is_empty());
}

#[tokio::test]
async fn delete_flow_and_data_removes_everything_the_flow_owns() {
    let db = TestDb::new().await;
    let pool = db.pool();
    assert_eq!(
        ensure(pool, "gone", &shape(), false).await["status"],
        json!("compiled")
    );
    exec(
        pool,
        "select pgflow.create_flow('kept'); select pgflow.add_step('kept', 'k');",
    )
    .await;
    start(pool, "gone", json!({})).await;
    let kept = start(pool, "kept", json!({})).await;
    exec(pool, "select pgflow.delete_flow_and_data('gone')").await;
    for table in [
        "flows",
        "steps",
        "deps",
        "runs",
        "step_states",
        "step_tasks",
    ] {
        let n = scalar_i64(
            pool,
            &format!("select count(*) from pgflow.{table} where flow_slug = 'gone'"),
        )
        .await;
        assert_eq!(n, 0, "{table}");
    }
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgmq.list_queues() where queue_name = 'gone'"
        )
        .await,
        0
    );
    assert_eq!(run_status(pool, kept).await, "started");
}
