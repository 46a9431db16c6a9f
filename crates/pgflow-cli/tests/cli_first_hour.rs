//! What a new user meets in the first hour (issue 13): strict flow files,
//! steps in any order, cycles named, options applied on re-add, sides named
//! in shape differences, the real slug limit, runs nobody serves, Ctrl-C on
//! `run watch`, and connection errors that say what kind they are.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use pgflow_tests::{FakeWorker, TestDb};
use serde_json::json;

fn add(url: &str, dir: &std::path::Path, name: &str, text: &str) -> std::process::Output {
    let path = write(dir, name, text);
    pgflow(&["flow", "add", path.to_str().unwrap()], Some(url))
}

#[tokio::test]
async fn unknown_keys_are_refused_with_key_step_and_closest_key() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let err = fails(add(
        db.url(),
        dir.path(),
        "typo.json",
        r#"{"slug": "typo", "steps": [{"slug": "a"}, {"slug": "b", "dependOn": ["a"]}]}"#,
    ));
    assert!(
        err.contains(r#"unknown key "dependOn" in step "b": did you mean "dependsOn"?"#),
        "{err}"
    );
    assert!(err.contains("typo.json"), "{err}");
    let err = fails(add(
        db.url(),
        dir.path(),
        "opts.toml",
        "slug = \"opts\"\n[[steps]]\nslug = \"a\"\nmax_attempts = 7\n",
    ));
    assert!(
        err.contains(r#"unknown key "max_attempts" in step "a": did you mean "maxAttempts"?"#),
        "{err}"
    );
    let err = fails(add(
        db.url(),
        dir.path(),
        "top.yaml",
        "slug: top\ncolour: red\nsteps: []\n",
    ));
    assert!(
        err.contains(r#"unknown key "colour" in the flow (valid keys: slug, maxAttempts"#),
        "{err}"
    );
    // Nothing was registered.
    assert_eq!(json(&["flow", "list"], db.url()), json!([]));
}

#[tokio::test]
async fn steps_in_any_order_register_and_cycles_are_named() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let text = ok(add(
        db.url(),
        dir.path(),
        "backwards.json",
        r#"{"slug": "backwards", "steps": [
            {"slug": "load", "dependsOn": ["rows"]},
            {"slug": "rows", "type": "map", "dependsOn": ["extract"]},
            {"slug": "extract"}]}"#,
    ));
    assert!(
        text.contains("flow backwards registered (3 steps)"),
        "{text}"
    );
    let shown = json(&["flow", "show", "backwards"], db.url());
    let order: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_slug"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["extract", "rows", "load"]);

    let text = ok(add(
        db.url(),
        dir.path(),
        "one.json",
        r#"{"slug": "one", "steps": [{"slug": "a"}]}"#,
    ));
    assert!(text.contains("flow one registered (1 step)"), "{text}");

    let err = fails(add(
        db.url(),
        dir.path(),
        "cycle.json",
        r#"{"slug": "cycle", "steps": [
            {"slug": "a", "dependsOn": ["c"]}, {"slug": "b", "dependsOn": ["a"]},
            {"slug": "c", "dependsOn": ["b"]}]}"#,
    ));
    assert!(
        err.contains("steps depend on each other in a cycle: a → b → c → a"),
        "{err}"
    );
    let err = fails(add(
        db.url(),
        dir.path(),
        "self.json",
        r#"{"slug": "selfish", "steps": [{"slug": "a", "dependsOn": ["a"]}]}"#,
    ));
    assert!(
        err.contains(r#"step "a" depends on itself (a cycle: a → a)"#),
        "{err}"
    );
    assert!(!err.contains("unknown"), "{err}");
}

#[tokio::test]
async fn readding_with_changed_options_applies_them_and_says_which() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = r#"{"slug": "tuned", "maxAttempts": 2,
        "steps": [{"slug": "a"}, {"slug": "b", "dependsOn": ["a"], "timeout": 30}]}"#;
    let v2 = r#"{"slug": "tuned", "maxAttempts": 7,
        "steps": [{"slug": "a", "startDelay": 4}, {"slug": "b", "dependsOn": ["a"]}]}"#;
    ok(add(db.url(), dir.path(), "v1.json", v1));
    let run = ok(pgflow(&["run", "start", "tuned"], Some(db.url())));

    let text = ok(add(db.url(), dir.path(), "v2.json", v2));
    assert!(
        text.contains("already registered with the same shape; options updated:"),
        "{text}"
    );
    for line in [
        "  - flow: maxAttempts 2 -> 7",
        "  - step a: startDelay (the flow's) -> 4s",
        "  - step b: timeout 30s -> (the flow's)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let shown = json(&["flow", "show", "tuned"], db.url());
    assert_eq!(shown["flow"]["opt_max_attempts"], 7);
    assert_eq!(shown["steps"][0]["opt_start_delay"], 4);
    assert_eq!(shown["steps"][1]["opt_timeout"], serde_json::Value::Null);
    // Options only: the run is still there.
    ok(pgflow(&["run", "show", run.trim()], Some(db.url())));

    // The same file again: nothing left to change.
    let path = write(dir.path(), "v2.json", v2);
    let again = json(&["flow", "add", path.to_str().unwrap()], db.url());
    assert_eq!(again["status"], "verified");
    assert_eq!(again["options_changed"], json!([]));
    let text = ok(add(db.url(), dir.path(), "v2.json", v2));
    assert!(
        text.contains("same shape and options; nothing to do"),
        "{text}"
    );

    // --json lists the changes.
    let back = json(
        &[
            "flow",
            "add",
            write(dir.path(), "v1.json", v1).to_str().unwrap(),
        ],
        db.url(),
    );
    assert_eq!(back["status"], "verified");
    assert_eq!(
        back["options_changed"][0],
        json!({"step": null, "option": "maxAttempts", "old": 7, "new": 2})
    );
    assert_eq!(back["options_changed"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn shape_differences_name_the_file_and_the_database() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    ok(add(
        db.url(),
        dir.path(),
        "v1.json",
        r#"{"slug": "sides", "steps": [{"slug": "a"}, {"slug": "b", "dependsOn": ["a"]}]}"#,
    ));
    let err = fails(add(
        db.url(),
        dir.path(),
        "v2.json",
        r#"{"slug": "sides", "steps": [{"slug": "a"}, {"slug": "b", "dependsOn": ["a"]}, {"slug": "c"}]}"#,
    ));
    assert!(
        err.contains("Step count differs: 3 in the file, 2 in the database"),
        "{err}"
    );
    assert!(
        err.contains("Step at index 2: missing in the database (the file has 'c')"),
        "{err}"
    );
    assert!(!err.contains(" vs "), "{err}");
    assert!(!err.contains("first shape"), "{err}");
}

#[tokio::test]
async fn the_slug_rule_states_the_real_limit() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let slug = "x".repeat(60);
    let err = fails(add(
        db.url(),
        dir.path(),
        "long.json",
        &json!({"slug": slug, "steps": [{"slug": "a"}]}).to_string(),
    ));
    assert!(
        err.contains("has 60 characters: a flow slug is 1 to 47"),
        "{err}"
    );
    assert!(err.contains("pgmq queue"), "{err}");
    assert!(!err.contains("128"), "{err}");
}

#[tokio::test]
async fn runs_nobody_serves_are_flagged_with_how_to_start_a_worker() {
    let db = TestDb::new().await;
    let _f = add_flow(
        db.url(),
        &json!({"slug": "lonely", "steps": [{"slug": "a"}]}),
    );
    let out = pgflow(&["run", "start", "lonely"], Some(db.url()));
    let run_id = ok(out.clone());
    let err = stderr(&out);
    assert!(
        err.contains(r#"warning: no live worker serves flow "lonely""#),
        "{err}"
    );
    assert!(err.contains("start a worker process"), "{err}");
    // stdout is still only the id.
    assert_eq!(run_id.trim().len(), 36, "{run_id}");

    let shown = pgflow(&["run", "show", run_id.trim()], Some(db.url()));
    assert!(
        stderr(&shown).contains("no live worker serves"),
        "{shown:?}"
    );

    // With a live worker (a fresh heartbeat on the queue) nothing is said.
    let _worker = FakeWorker::register(db.pool(), "lonely").await;
    let out = pgflow(&["run", "start", "lonely"], Some(db.url()));
    ok(out.clone());
    assert!(!stderr(&out).contains("warning"), "{out:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn run_watch_on_ctrl_c_says_the_run_continues_and_exits_130() {
    let db = TestDb::new().await;
    let _f = add_flow(
        db.url(),
        &json!({"slug": "waits", "steps": [{"slug": "a"}]}),
    );
    let run_id = ok(pgflow(&["run", "start", "waits"], Some(db.url())));
    let mut child = cmd(&["run", "watch", run_id.trim()], Some(db.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The warning comes once the interrupt handler is in place.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("no live worker serves"), "{first}");
    let mut watching = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut watching)
        .unwrap();
    let shown_steps = format!("watching run {} of flow waits (1 step)", run_id.trim());
    assert!(watching.contains(&shown_steps), "{watching}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{rest}");
    assert!(
        rest.contains(&format!("run {} continues", run_id.trim())),
        "{rest}"
    );
    assert!(
        rest.contains(&format!("pgflow run watch {}", run_id.trim())),
        "{rest}"
    );
    // The run was left alone.
    let shown = json(&["run", "show", run_id.trim()], db.url());
    assert_eq!(shown["run"]["status"], "started");
}

#[tokio::test]
async fn connection_errors_say_what_kind_they_are() {
    // Another database's URL is refused before any attempt.
    let err = fails(pgflow(
        &[
            "flow",
            "list",
            "--database-url",
            "mysql://u:sekret@127.0.0.1:3306/app",
        ],
        None,
    ));
    assert!(err.contains("`mysql://` is not a PostgreSQL URL"), "{err}");
    assert!(!err.contains("sekret"), "{err}");

    // Nothing listening.
    let err = fails(pgflow(
        &["install", "--database-url", "postgres://u@127.0.0.1:1/app"],
        None,
    ));
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        !err.contains("error connecting to server: error connecting to server"),
        "{err}"
    );

    // A database that does not exist on a server that does.
    let db = TestDb::new().await;
    let (base, _) = db.url().rsplit_once('/').unwrap();
    let missing = format!("{base}/no_such_database_here");
    let err = fails(pgflow(&["flow", "list", "--database-url", &missing], None));
    assert!(
        err.contains(r#"has no database "no_such_database_here""#),
        "{err}"
    );
    assert!(err.contains("createdb"), "{err}");

    // TLS demanded from a server without it.
    let tls = format!("{}?sslmode=require", db.url());
    let err = fails(pgflow(&["flow", "list", "--database-url", &tls], None));
    assert!(err.contains("TLS"), "{err}");
    assert!(err.contains("sslmode"), "{err}");
    assert!(!err.contains("check that PostgreSQL is running"), "{err}");
}

#[tokio::test]
async fn an_empty_pgmq_schema_gets_the_fix() {
    let db = TestDb::empty().await;
    sqlx::query("create schema pgmq")
        .execute(db.pool())
        .await
        .unwrap();
    let err = fails(pgflow(&["install"], Some(db.url())));
    assert!(err.contains("a `pgmq` schema exists"), "{err}");
    assert!(err.contains("DROP SCHEMA pgmq CASCADE"), "{err}");
}
