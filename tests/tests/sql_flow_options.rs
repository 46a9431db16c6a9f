//! pgflow.apply_flow_options: a registered flow's options (flow and steps)
//! follow a shape, and nothing else does.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::{json, Value};

fn step(slug: &str, deps: &[&str], options: Value) -> Value {
    let mut s = json!({"slug": slug, "stepType": "single", "dependencies": deps,
        "whenUnmet": "skip", "whenExhausted": "fail",
        "requiredInputPattern": {"defined": false}, "forbiddenInputPattern": {"defined": false}});
    if options != json!({}) {
        s["options"] = options;
    }
    s
}

async fn apply(pool: &sqlx::PgPool, slug: &str, shape: &Value) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar("select pgflow.apply_flow_options($1, $2)")
        .bind(slug)
        .bind(shape)
        .fetch_one(pool)
        .await
}

async fn options(pool: &sqlx::PgPool) -> Value {
    scalar_json(
        pool,
        "select jsonb_build_object(
           'flow', (select jsonb_build_array(opt_max_attempts, opt_base_delay, opt_timeout)
                      from pgflow.flows where flow_slug = 'opts'),
           'steps', (select jsonb_agg(jsonb_build_array(step_slug, opt_max_attempts, opt_base_delay,
                                                        opt_timeout, opt_start_delay) order by step_index)
                       from pgflow.steps where flow_slug = 'opts'))",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn options_follow_the_shape_and_the_changes_are_reported() {
    let db = TestDb::new().await;
    let v1 = json!({"options": {"maxAttempts": 2},
                    "steps": [step("a", &[], json!({"timeout": 30})), step("b", &["a"], json!({}))]});
    let compiled: Value = sqlx::query_scalar("select pgflow.ensure_flow_compiled('opts', $1)")
        .bind(&v1)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(compiled["status"], "compiled");
    let run = start(db.pool(), "opts", json!({})).await;

    // The same options: nothing to change.
    assert_eq!(apply(db.pool(), "opts", &v1).await.unwrap(), json!([]));

    let v2 = json!({"options": {"maxAttempts": 7, "timeout": 90},
                    "steps": [step("a", &[], json!({})), step("b", &["a"], json!({"startDelay": 3}))]});
    let changes = apply(db.pool(), "opts", &v2).await.unwrap();
    assert_eq!(
        changes,
        json!([
            {"step": null, "option": "maxAttempts", "old": 2, "new": 7},
            {"step": null, "option": "timeout", "old": 60, "new": 90},
            {"step": "a", "option": "timeout", "old": 30, "new": null},
            {"step": "b", "option": "startDelay", "old": null, "new": 3}
        ])
    );
    assert_eq!(
        options(db.pool()).await,
        json!({"flow": [7, 5, 90], "steps": [["a", null, null, null, null], ["b", null, null, null, 3]]})
    );
    // Options only: the run and the shape are untouched.
    assert_eq!(run_status(db.pool(), run).await, "started");
    let verified: Value = sqlx::query_scalar("select pgflow.ensure_flow_compiled('opts', $1)")
        .bind(&v2)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(verified["status"], "verified");
}

#[tokio::test]
async fn a_different_shape_or_bad_values_change_nothing() {
    let db = TestDb::new().await;
    let v1 = json!({"steps": [step("a", &[], json!({}))]});
    sqlx::query("select pgflow.ensure_flow_compiled('opts', $1)")
        .bind(&v1)
        .execute(db.pool())
        .await
        .unwrap();
    let before = options(db.pool()).await;

    let other = json!({"options": {"maxAttempts": 9}, "steps": [step("z", &[], json!({}))]});
    let err = sql_error(apply(db.pool(), "opts", &other).await.unwrap_err());
    assert_eq!(err.code, "22023");
    assert!(
        err.message
            .contains("different shape; options were not applied"),
        "{err:?}"
    );
    assert!(err.detail.contains("slug differs"), "{err:?}");

    let bad = json!({"options": {"timeout": 0}, "steps": [step("a", &[], json!({}))]});
    let err = sql_error(apply(db.pool(), "opts", &bad).await.unwrap_err());
    assert_eq!(
        err.constraint.as_deref(),
        Some("opt_timeout_is_positive"),
        "{err:?}"
    );
    assert_eq!(options(db.pool()).await, before);

    let err = sql_error(apply(db.pool(), "nope", &v1).await.unwrap_err());
    assert_eq!(err.code, "P0002");
    assert!(
        err.message.contains("Flow 'nope' does not exist"),
        "{err:?}"
    );
}

#[tokio::test]
async fn public_cannot_call_it() {
    let db = TestDb::new().await;
    let public_may: bool = sqlx::query_scalar(
        "select has_function_privilege('public', 'pgflow.apply_flow_options(text, jsonb)', 'execute')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(!public_may);
}
