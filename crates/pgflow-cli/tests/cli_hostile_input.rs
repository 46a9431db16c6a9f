//! Hostile input through the real `pgflow` binary: slugs with quotes,
//! semicolons, unicode or 10,000 characters, a 50 MB run input from a file,
//! NULL-ish and malformed inputs, negative options in flow files. Each must
//! fail with a clear, bounded error message (no panic, no echo of the whole
//! input) and leave the database exactly as it was.

use crate::common;

use std::process::Output;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;
use sqlx::PgPool;

/// Everything a CLI command could have changed, as one comparable text.
async fn snapshot(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "select jsonb_build_object(
           'flows', (select jsonb_agg(to_jsonb(f) order by flow_slug) from pgflow.flows f),
           'steps', (select jsonb_agg(to_jsonb(s) order by flow_slug, step_slug) from pgflow.steps s),
           'deps', (select count(*) from pgflow.deps),
           'runs', (select jsonb_agg(to_jsonb(r) order by run_id) from pgflow.runs r),
           'step_states', (select count(*) from pgflow.step_states),
           'step_tasks', (select count(*) from pgflow.step_tasks),
           'workers', (select count(*) from pgflow.workers),
           'queues', (select jsonb_agg(queue_name order by queue_name) from pgmq.list_queues()),
           'tables', (select count(*) from pg_tables where schemaname in ('pgflow', 'pgmq', 'public'))
         )::text",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Asserts a clear failure: a non-zero exit that is not a panic, a message
/// on stderr that is not empty, not a panic and short (a hostile argument may
/// be quoted back once, `echoed` bytes, but no more: never a whole input).
fn assert_clear_failure(what: &str, out: &Output, reason: &str) -> String {
    assert_clear_failure_quoting(what, out, 0, reason)
}

/// Also checks the message gives the expected `reason` (not just any error).
fn assert_clear_failure_quoting(what: &str, out: &Output, echoed: usize, reason: &str) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "{what}: succeeded\nstdout:\n{}",
        stdout(out)
    );
    assert_ne!(out.status.code(), Some(101), "{what}: panicked:\n{err}");
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    assert!(!err.trim().is_empty(), "{what}: no error message");
    assert!(
        err.len() < 4_000 + echoed,
        "{what}: error message of {} bytes",
        err.len()
    );
    assert!(
        err.contains(reason),
        "{what}: expected the reason {reason:?} in:\n{err}"
    );
    err
}

#[tokio::test]
async fn hostile_cli_input_fails_clearly_and_changes_nothing() {
    let db = TestDb::new().await;
    let url = db.url();
    let _good = add_flow(url, &json!({"slug": "good", "steps": [{"slug": "a"}]}));
    let _mapped = add_flow(
        url,
        &json!({"slug": "mapped", "steps": [{"slug": "each", "type": "map"}]}),
    );
    let before = snapshot(db.pool()).await;
    let dir = tempfile::tempdir().unwrap();

    let long_slug = "a".repeat(10_000);
    let hostile_slugs = [
        "x'; drop table pgflow.runs; --",
        "good;select 1",
        "good\"",
        "flöw_ñ",
        "流れ",
        "good\u{202e}",
        "",
        " ",
        "NULL",
        long_slug.as_str(),
    ];
    for slug in hostile_slugs {
        let shown: String = slug.chars().take(40).collect();
        let out = pgflow(&["run", "start", slug], Some(url));
        assert_clear_failure_quoting(
            &format!("run start {shown:?}"),
            &out,
            slug.len(),
            "unknown flow",
        );
        for args in [
            vec!["flow", "show", slug],
            vec!["flow", "delete", slug, "--yes"],
        ] {
            let out = pgflow(&args, Some(url));
            assert_clear_failure_quoting(
                &format!("{} {} {shown:?}", args[0], args[1]),
                &out,
                slug.len(),
                "unknown flow",
            );
        }
    }

    // Run ids that are not UUIDs.
    for id in [
        "'; delete from pgflow.runs; --",
        "00000000-0000-0000-0000-00000000000g",
        "",
    ] {
        for sub in ["show", "cancel", "retry"] {
            let out = pgflow(&["run", sub, id], Some(url));
            assert_clear_failure(&format!("run {sub} {id:?}"), &out, "for '<RUN_ID>'");
        }
    }

    // Inputs: malformed, NULL-ish where an array is required, NUL escapes,
    // missing files, and 50 MB from a file.
    let not_json = "--input is not valid JSON";
    let not_array = "has root map steps but input is not an array";
    let unreadable = "cannot read the input file";
    let cases: Vec<(&str, String, &str)> = vec![
        ("good", "not json".into(), not_json),
        ("good", "{\"a\": 1".into(), not_json),
        (
            "good",
            "{\"a\": \"\\u0000\"}".into(),
            "unsupported Unicode escape sequence",
        ),
        ("good", "".into(), not_json),
        ("mapped", "null".into(), not_array),
        ("mapped", "{}".into(), not_array),
        ("mapped", "\"[1,2]\"".into(), not_array),
        ("good", "@/nonexistent/input.json".into(), unreadable),
        ("good", "@".into(), unreadable),
    ];
    for (flow, input, reason) in &cases {
        let out = pgflow(&["run", "start", flow, "--input", input], Some(url));
        assert_clear_failure(&format!("run start {flow} --input {input:?}"), &out, reason);
    }
    let big = dir.path().join("big.json");
    {
        let chunk = "x".repeat(1 << 20);
        let items: Vec<&str> = std::iter::repeat_n(chunk.as_str(), 50).collect();
        std::fs::write(&big, serde_json::to_vec(&items).unwrap()).unwrap();
    }
    let at_big = format!("@{}", big.display());
    for flow in ["good", "mapped"] {
        let out = pgflow(&["run", "start", flow, "--input", &at_big], Some(url));
        assert_clear_failure(
            &format!("run start {flow} with a 50 MB input"),
            &out,
            "over the 16777216-byte limit (pgflow.config.max_payload_bytes)",
        );
    }

    // Flow files with hostile slugs and negative or absurd options.
    let bad_flows = [
        (
            json!({"slug": "x'; drop schema pgflow cascade; --", "steps": [{"slug": "a"}]}),
            "invalid flow slug",
        ),
        (
            json!({"slug": long_slug, "steps": [{"slug": "a"}]}),
            "invalid flow slug",
        ),
        (
            json!({"slug": "flöw", "steps": [{"slug": "a"}]}),
            "invalid flow slug \"flöw\"",
        ),
        (
            json!({"slug": "neg_flow", "maxAttempts": -1, "steps": [{"slug": "a"}]}),
            "maxAttempts must be >= 1, got -1",
        ),
        (
            json!({"slug": "neg_flow", "baseDelay": -5, "steps": [{"slug": "a"}]}),
            "baseDelay must be >= 1, got -5",
        ),
        (
            json!({"slug": "neg_flow", "timeout": 0, "steps": [{"slug": "a"}]}),
            "timeout must be >= 3, got 0",
        ),
        (
            json!({"slug": "neg_flow", "timeout": -60, "steps": [{"slug": "a"}]}),
            "timeout must be >= 3, got -60",
        ),
        (
            json!({"slug": "neg_step", "steps": [{"slug": "a", "maxAttempts": -3}]}),
            "step a: maxAttempts must be >= 1, got -3",
        ),
        (
            json!({"slug": "neg_step", "steps": [{"slug": "a", "startDelay": -1}]}),
            "step a: startDelay must be >= 0, got -1",
        ),
        (
            json!({"slug": "neg_step", "steps": [{"slug": "a", "timeout": -1}]}),
            "step a: timeout must be >= 3, got -1",
        ),
        (
            json!({"slug": "big_opt", "maxAttempts": 1e12, "steps": [{"slug": "a"}]}),
            "expected i32",
        ),
        (
            json!({"slug": "null_opt", "maxAttempts": null, "timeout": "NULL", "steps": [{"slug": "a"}]}),
            "invalid type: string \"NULL\", expected i32",
        ),
        (
            json!({"slug": "bad_step", "steps": [{"slug": "a;b"}]}),
            "invalid step slug \"a;b\"",
        ),
        (
            json!({"slug": "bad_step", "steps": [{"slug": "run"}]}),
            "invalid step slug \"run\"",
        ),
        (
            json!({"slug": "bad_step", "steps": [{"slug": null}]}),
            "invalid type: null, expected a string",
        ),
        (
            json!({"slug": "bad_dep", "steps": [{"slug": "a", "dependsOn": ["nope"]}]}),
            "depends on \"nope\", which is not a step of this flow",
        ),
        (
            json!({"slug": "cycle", "steps": [{"slug": "a", "dependsOn": ["b"]}, {"slug": "b", "dependsOn": ["a"]}]}),
            "in a cycle: a → b → a",
        ),
        (
            json!({"slug": "dup", "steps": [{"slug": "a"}, {"slug": "a"}]}),
            "duplicate step slug \"a\"",
        ),
        (
            json!({"slug": null, "steps": []}),
            "`slug` must be a string",
        ),
        (json!([]), "expected an object with `slug` and `steps`"),
        (json!("flow"), "expected an object with `slug` and `steps`"),
    ];
    for (i, (def, reason)) in bad_flows.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.json"), &def.to_string());
        let out = pgflow(&["flow", "add", path.to_str().unwrap()], Some(url));
        let shown: String = def.to_string().chars().take(100).collect();
        assert_clear_failure_quoting(&format!("flow add {shown}"), &out, long_slug.len(), reason);
    }
    // Not JSON / TOML / YAML at all, and a binary file.
    for (name, content, reason) in [
        ("broken.json", "{\"slug\": \"x\", ", "EOF while parsing"),
        (
            "broken.toml",
            "slug = \"x\"\n[[steps]\nslug = 1",
            "TOML parse error",
        ),
        (
            "broken.yaml",
            "slug: [x\nsteps: {",
            "while parsing a flow sequence",
        ),
        ("flow.txt", "slug: x", "unknown flow file extension \"txt\""),
    ] {
        let path = write(dir.path(), name, content);
        let out = pgflow(&["flow", "add", path.to_str().unwrap()], Some(url));
        assert_clear_failure(&format!("flow add {name}"), &out, reason);
    }
    let binary = dir.path().join("binary.json");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01, 0x80]).unwrap();
    let out = pgflow(&["flow", "add", binary.to_str().unwrap()], Some(url));
    assert_clear_failure(
        "flow add of a binary file",
        &out,
        "stream did not contain valid UTF-8",
    );

    // Negative and absurd command options.
    for (args, reason) in [
        (
            vec!["run", "list", "--limit", "-1"],
            "unexpected argument '-1'",
        ),
        (
            vec!["workers", "--stale-after", "-5"],
            "unexpected argument '-5'",
        ),
        (
            vec!["prune", "--older-than", "-30d"],
            "unexpected argument '-3'",
        ),
        (
            vec!["prune", "--older-than=-30d"],
            "invalid value '-30d' for '--older-than",
        ),
        (
            vec!["workers", "--stale-after=-5"],
            "invalid value '-5' for '--stale-after",
        ),
        (
            vec!["prune", "--older-than", "'; drop table pgflow.runs; --"],
            "for '--older-than <OLDER_THAN>': expected number",
        ),
        (
            vec!["run", "list", "--status", "'; --"],
            "[possible values: started, completed, failed, cancelled]",
        ),
    ] {
        let out = pgflow(&args, Some(url));
        assert_clear_failure(&args.join(" "), &out, reason);
    }

    // A limit below 1 is refused by name.
    for limit in ["--limit=-1", "--limit=0"] {
        let out = pgflow(&["run", "list", limit], Some(url));
        assert_clear_failure(limit, &out, "for '--limit <LIMIT>'");
    }

    assert_eq!(
        snapshot(db.pool()).await,
        before,
        "hostile CLI input changed the database"
    );
}
