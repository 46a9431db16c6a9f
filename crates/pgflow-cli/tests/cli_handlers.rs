//! Built-in handler specs stored with a flow: `pgflow flow add` validates and
//! stores them, `pgflow flow show` shows them, and `pgflow.set_step_handler`
//! does the same for psql users.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::{json, Value};

const FLOW: &str = r#"
slug: digest
steps:
  - slug: fetch
    handler:
      kind: http
      url: "http://127.0.0.1:9/items/{{ id }}"
      timeout: 5
  - slug: shout
    dependsOn: [fetch]
    handler: {kind: transform, filter: ".fetch.body | ascii_upcase"}
  - slug: manual
    dependsOn: [fetch]
"#;

fn handler_of(shown: &Value, step: &str) -> Value {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_slug"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {shown}"))["handler"]
        .clone()
}

async fn stored_handlers(db: &TestDb) -> Vec<(String, Value)> {
    sqlx::query_as("select step_slug, spec from pgflow.step_handlers order by step_slug")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn flow_add_stores_handlers_and_show_prints_them() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "digest.yaml", FLOW);
    let added = json(&["flow", "add", path.to_str().unwrap()], db.url());
    assert_eq!(added["status"], "compiled", "{added}");
    assert_eq!(added["handlers_changed"], 2, "{added}");

    let shown = json(&["flow", "show", "digest"], db.url());
    assert_eq!(
        handler_of(&shown, "shout"),
        json!({"kind": "transform", "filter": ".fetch.body | ascii_upcase"})
    );
    assert_eq!(handler_of(&shown, "fetch")["kind"], "http");
    assert_eq!(handler_of(&shown, "manual"), Value::Null);
    let text = ok(pgflow(&["flow", "show", "digest"], Some(db.url())));
    assert!(text.contains("HANDLER"), "{text}");
    assert!(
        text.contains("http http://127.0.0.1:9/items/{{ id }}"),
        "{text}"
    );

    // A changed handler is configuration: same shape, no --allow-data-loss,
    // runs kept, the spec replaced; a removed one is deleted.
    sqlx::query("select pgflow.start_flow('digest', '{\"id\": 1}')")
        .execute(db.pool())
        .await
        .unwrap();
    let changed = FLOW
        .replace("ascii_upcase", "ascii_downcase")
        .replace("    handler:\n      kind: http\n      url: \"http://127.0.0.1:9/items/{{ id }}\"\n      timeout: 5\n", "");
    let path = write(dir.path(), "digest2.yaml", &changed);
    let again = json(&["flow", "add", path.to_str().unwrap()], db.url());
    assert_eq!(again["status"], "verified", "{again}");
    assert_eq!(again["handlers_changed"], 2, "{again}");
    assert_eq!(
        stored_handlers(&db).await,
        vec![(
            "shout".to_string(),
            json!({"kind": "transform", "filter": ".fetch.body | ascii_downcase"})
        )]
    );
    let runs: i64 = sqlx::query_scalar("select count(*) from pgflow.runs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(runs, 1, "a handler change must not delete runs");
}

#[tokio::test]
async fn invalid_handlers_name_flow_step_and_field_and_store_nothing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{kind: htp}",
            "step \"a\": handler.kind: unknown kind \"htp\"",
        ),
        ("{kind: http, url: \"ftp://x\"}", "step \"a\": handler.url"),
        (
            "{kind: transform, filter: \".a | \"}",
            "step \"a\": handler.filter",
        ),
        (
            "{kind: template, template: \"{{ x \"}",
            "step \"a\": handler.template",
        ),
        (
            "{kind: template, template: hi, extra: 1}",
            "handler.extra: unknown field",
        ),
        ("{kind: llm, prompt: hi}", "handler.model: missing"),
    ];
    for (spec, wanted) in cases {
        let text = format!("slug: bad\nsteps:\n  - slug: a\n    handler: {spec}\n");
        let path = write(dir.path(), "bad.yaml", &text);
        let err = fails(pgflow(
            &["flow", "add", path.to_str().unwrap()],
            Some(db.url()),
        ));
        assert!(err.contains("flow \"bad\""), "{spec}: {err}");
        assert!(err.contains(wanted), "{spec}: wanted {wanted:?} in {err}");
    }
    let flows: i64 = sqlx::query_scalar("select count(*) from pgflow.flows")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        flows, 0,
        "nothing may be registered when a handler is invalid"
    );
    assert!(stored_handlers(&db).await.is_empty());
}

#[tokio::test]
async fn set_step_handler_checks_what_sql_can() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "digest.yaml", FLOW);
    ok(pgflow(
        &["flow", "add", path.to_str().unwrap()],
        Some(db.url()),
    ));

    let set = |step: &'static str, spec: Value| {
        sqlx::query("select pgflow.set_step_handler('digest', $1, $2)")
            .bind(step)
            .bind(spec)
            .execute(db.pool())
    };
    set("manual", json!({"kind": "template", "template": "x"}))
        .await
        .unwrap();
    for (step, spec, wanted) in [
        (
            "nope",
            json!({"kind": "template"}),
            "flow \"digest\", step \"nope\": no such step",
        ),
        (
            "manual",
            json!([1]),
            "step \"manual\": handler: expected an object",
        ),
        ("manual", json!({"template": "x"}), "handler.kind: missing"),
        (
            "manual",
            json!({"kind": 3}),
            "handler.kind: expected a non-empty string",
        ),
        (
            "manual",
            json!({"kind": "llm", "api_key": "sk-1"}),
            "handler.api_key: API keys are never stored",
        ),
    ] {
        let err = set(step, spec.clone()).await.unwrap_err().to_string();
        assert!(err.contains(wanted), "{spec}: wanted {wanted:?} in {err}");
    }
    // The refused calls changed nothing; NULL removes.
    let manual: Value =
        sqlx::query_scalar("select spec from pgflow.step_handlers where step_slug = 'manual'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(manual, json!({"kind": "template", "template": "x"}));
    sqlx::query("select pgflow.set_step_handler('digest', 'manual', null)")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(stored_handlers(&db).await.len(), 2);

    // Recompiling with --allow-data-loss drops handlers with the old steps,
    // and the file's handlers are stored again.
    let changed = FLOW.replace("  - slug: manual\n    dependsOn: [fetch]\n", "");
    let path = write(dir.path(), "digest2.yaml", &changed);
    let again = json(
        &["flow", "add", "--allow-data-loss", path.to_str().unwrap()],
        db.url(),
    );
    assert_eq!(again["status"], "recompiled", "{again}");
    assert_eq!(stored_handlers(&db).await.len(), 2);
}
