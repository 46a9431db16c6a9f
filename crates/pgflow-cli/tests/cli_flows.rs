//! `pgflow flow add|list|show|delete` against a real database.

use crate::common;

use common::*;
use pgflow_tests::TestDb;

const JSON_FLOW: &str = r#"{
  "slug": "etl_json", "maxAttempts": 2, "timeout": 20,
  "steps": [
    {"slug": "extract"},
    {"slug": "rows", "type": "map", "dependsOn": ["extract"], "timeout": 30},
    {"slug": "audit", "dependsOn": ["extract"], "if": {"extract": {"audit": true}}},
    {"slug": "load", "dependsOn": ["rows", "audit"], "whenExhausted": "skip"}
  ]}"#;

const TOML_FLOW: &str = r#"
slug = "etl_toml"
maxAttempts = 2
timeout = 20

[[steps]]
slug = "extract"

[[steps]]
slug = "rows"
type = "map"
dependsOn = ["extract"]
timeout = 30

[[steps]]
slug = "audit"
dependsOn = ["extract"]
if = { extract = { audit = true } }

[[steps]]
slug = "load"
dependsOn = ["rows", "audit"]
whenExhausted = "skip"
"#;

const YAML_FLOW: &str = r#"
slug: etl_yaml
maxAttempts: 2
timeout: 20
steps:
  - slug: extract
  - slug: rows
    type: map
    dependsOn: [extract]
    timeout: 30
  - slug: audit
    dependsOn: [extract]
    if: {extract: {audit: true}}
  - slug: load
    dependsOn: [rows, audit]
    whenExhausted: skip
"#;

#[tokio::test]
async fn flow_add_reads_json_toml_and_yaml_files() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("etl.json", JSON_FLOW),
        ("etl.toml", TOML_FLOW),
        ("etl.yaml", YAML_FLOW),
    ] {
        let path = write(dir.path(), name, text);
        let added = json(&["flow", "add", path.to_str().unwrap()], db.url());
        assert_eq!(added["status"], "compiled", "{name}: {added}");
        // Adding the same file again changes nothing.
        let again = json(&["flow", "add", path.to_str().unwrap()], db.url());
        assert_eq!(again["status"], "verified", "{name}: {again}");
    }

    // The three files describe the same flow, so the stored shapes agree.
    let mut shapes = Vec::new();
    for slug in ["etl_json", "etl_toml", "etl_yaml"] {
        let shown = json(&["flow", "show", slug], db.url());
        assert_eq!(shown["flow"]["opt_max_attempts"], 2);
        assert_eq!(shown["flow"]["opt_timeout"], 20);
        let steps = shown["steps"].as_array().unwrap().clone();
        let rows = &steps[1];
        assert_eq!(rows["step_type"], "map");
        assert_eq!(rows["opt_timeout"], 30);
        assert_eq!(rows["level"], 1);
        assert_eq!(
            steps[3]["dependencies"],
            serde_json::json!(["audit", "rows"])
        );
        assert_eq!(steps[3]["level"], 2);
        assert_eq!(steps[3]["when_exhausted"], "skip");
        assert_eq!(
            steps[2]["required_input_pattern"],
            serde_json::json!({"extract": {"audit": true}})
        );
        shapes.push(steps);
    }
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[0], shapes[2]);

    let list = json(&["flow", "list"], db.url());
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flow_slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["etl_json", "etl_toml", "etl_yaml"]);
    assert_eq!(list[0]["step_count"], 4);

    // Human output: aligned table and the DAG by level.
    let text = ok(pgflow(&["flow", "list"], Some(db.url())));
    assert!(text.starts_with("FLOW "), "{text}");
    let shown = ok(pgflow(&["flow", "show", "etl_yaml"], Some(db.url())));
    for needle in [
        "level 0   o extract  (root: run input)",
        "level 1   o rows [map]  <- extract",
        "o audit  <- extract",
        "level 2   o load  <- audit, rows  -> output",
        "timeout=30s",
        "whenExhausted=skip",
    ] {
        assert!(shown.contains(needle), "missing {needle:?} in:\n{shown}");
    }
}

#[tokio::test]
async fn flow_add_refuses_drift_unless_data_loss_is_allowed() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = write(
        dir.path(),
        "v1.json",
        r#"{"slug": "drifty", "steps": [{"slug": "a"}, {"slug": "b", "dependsOn": ["a"]}]}"#,
    );
    let v2 = write(
        dir.path(),
        "v2.yml",
        "slug: drifty\nsteps:\n  - slug: a\n  - slug: c\n",
    );
    ok(pgflow(
        &["flow", "add", v1.to_str().unwrap()],
        Some(db.url()),
    ));
    let run_id = ok(pgflow(&["run", "start", "drifty"], Some(db.url())));

    let err = fails(pgflow(
        &["flow", "add", v2.to_str().unwrap()],
        Some(db.url()),
    ));
    assert!(
        err.contains("exists in the database with a different shape than in"),
        "{err}"
    );
    assert!(
        err.contains("Step count differs") || err.contains("slug differs: file"),
        "{err}"
    );
    assert!(
        err.contains("Step at index 1: slug differs: file 'c', database 'b'"),
        "{err}"
    );
    assert!(err.contains("--allow-data-loss"), "{err}");

    // --json still prints the verdict on stdout, and still exits non-zero.
    let out = pgflow(
        &["--json", "flow", "add", v2.to_str().unwrap()],
        Some(db.url()),
    );
    assert!(!out.status.success());
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["status"], "mismatch");
    assert!(!verdict["differences"].as_array().unwrap().is_empty());

    // Nothing changed: the run is still there.
    ok(pgflow(&["run", "show", run_id.trim()], Some(db.url())));

    let out = json(
        &["flow", "add", v2.to_str().unwrap(), "--allow-data-loss"],
        db.url(),
    );
    assert_eq!(out["status"], "recompiled");
    let shown = json(&["flow", "show", "drifty"], db.url());
    assert_eq!(shown["steps"][1]["step_slug"], "c");
    let err = fails(pgflow(&["run", "show", run_id.trim()], Some(db.url())));
    assert!(err.contains("unknown run"), "{err}");
}

#[tokio::test]
async fn flow_add_reports_invalid_files() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "slug = \"bad\"\n[[steps]]\nslug = \"b\"\ndependsOn = [\"a\"]\n",
    );
    let err = fails(pgflow(
        &["flow", "add", bad.to_str().unwrap()],
        Some(db.url()),
    ));
    assert!(err.contains("bad.toml"), "{err}");
    let txt = write(dir.path(), "flow.txt", "{}");
    let err = fails(pgflow(
        &["flow", "add", txt.to_str().unwrap()],
        Some(db.url()),
    ));
    assert!(err.contains(".json, .toml, .yaml"), "{err}");
    // Nothing was registered.
    assert_eq!(json(&["flow", "list"], db.url()), serde_json::json!([]));
}

#[tokio::test]
async fn flow_delete_needs_yes_and_an_existing_flow() {
    let db = TestDb::new().await;
    let _dir = add_flow(
        db.url(),
        &serde_json::json!({"slug": "doomed", "steps": [{"slug": "a"}]}),
    );
    ok(pgflow(&["run", "start", "doomed"], Some(db.url())));

    let err = fails(pgflow(&["flow", "delete", "doomed"], Some(db.url())));
    assert!(err.contains("--yes"), "{err}");
    let err = fails(pgflow(&["flow", "show", "nope"], Some(db.url())));
    assert!(err.contains("unknown flow \"nope\""), "{err}");
    let err = fails(pgflow(&["flow", "delete", "nope", "--yes"], Some(db.url())));
    assert!(err.contains("unknown flow \"nope\""), "{err}");

    let out = json(&["flow", "delete", "doomed", "--yes"], db.url());
    assert_eq!(out["deleted"], true);
    assert_eq!(out["runs_deleted"], 1);
    assert_eq!(json(&["flow", "list"], db.url()), serde_json::json!([]));
    assert_eq!(json(&["queues"], db.url()), serde_json::json!([]));
}
