use std::time::Duration;

use pgflow_handlers::TaskEnv;
use serde_json::{json, Value};

use crate::support::{is_dead, prepare, resources, task, wait_dead, wait_for_lines};

fn allowed(timeout: Duration) -> TaskEnv {
    task(resources().with_allow_exec(true), timeout)
}

fn sh(script: &str) -> Value {
    json!({ "kind": "exec", "command": ["sh", "-c", script] })
}

#[tokio::test]
async fn input_on_stdin_output_from_stdout() {
    let out = prepare(json!({
        "kind": "exec",
        "command": [
            "python3", "-c",
            "import json, sys; d = json.load(sys.stdin); print(json.dumps({'sum': sum(d['xs']), 'n': len(d['xs'])}))"
        ],
    }))
    .run(json!({ "xs": [1, 2, 3.5] }), &allowed(Duration::from_secs(60)))
    .await
    .unwrap();
    assert_eq!(out.output, json!({ "sum": 6.5, "n": 3 }));

    let input = json!({ "echo": ["as", { "is": true }] });
    let out = prepare(sh("cat"))
        .run(input.clone(), &allowed(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(out.output, input);
}

#[tokio::test]
async fn env_adds_variables() {
    let out = prepare(json!({
        "kind": "exec",
        "command": ["sh", "-c", "printf '{\"greeting\": \"%s\"}' \"$GREETING\""],
        "env": { "GREETING": "hi there" },
    }))
    .run(json!(null), &allowed(Duration::from_secs(60)))
    .await
    .unwrap();
    assert_eq!(out.output, json!({ "greeting": "hi there" }));
}

#[tokio::test]
async fn a_failing_program_reports_its_status_and_stderr() {
    let err = prepare(sh(
        "cat >/dev/null; echo 'Traceback: boom' >&2; echo 'ValueError: bad input' >&2; exit 3",
    ))
    .run(json!({}), &allowed(Duration::from_secs(60)))
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        err.message(),
        "exec `sh`: exited with status 3; stderr: Traceback: boom\nValueError: bad input"
    );
}

#[tokio::test]
async fn stderr_in_the_message_is_bounded_to_its_end() {
    let err = prepare(sh(
        "i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1",
    ))
    .run(json!({}), &allowed(Duration::from_secs(60)))
    .await
    .unwrap_err();
    let message = err.message();
    assert!(message.len() < 2200, "{} bytes", message.len());
    assert!(message.ends_with("line 1999"), "{message}");
    assert!(message.contains("stderr: ..."), "{message}");
}

#[tokio::test]
async fn non_json_stdout_is_a_permanent_failure() {
    let err = prepare(sh("echo 'hello world'; echo 'debug note' >&2"))
        .run(json!({}), &allowed(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message().starts_with("exec `sh`: stdout is not JSON ("),
        "{err}"
    );
    assert!(
        err.message()
            .ends_with("it began: hello world\n; stderr: debug note"),
        "{err}"
    );

    let err = prepare(sh("true"))
        .run(json!({}), &allowed(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "exec `sh`: printed nothing on stdout (it must print one JSON value); stderr was empty"
    );
}

#[tokio::test]
async fn a_hanging_program_and_its_children_are_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let handler = prepare(json!({
        "kind": "exec",
        "command": ["sh", "-c", "echo $$ > \"$PIDS\"; sleep 1000 & echo $! >> \"$PIDS\"; wait"],
        "env": { "PIDS": pids.to_str().unwrap() },
    }));
    let err = handler
        .run(json!({}), &allowed(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        err.message(),
        "exec `sh`: still running at the step's deadline; killed it and its process group"
    );
    let pids = wait_for_lines(&pids, 2).await;
    // The shell was reaped by the handler; the sleep it started is killed too.
    assert!(is_dead(pids[0]), "the program survived");
    wait_dead(pids[1]).await;
}

#[tokio::test]
async fn an_abandoned_task_kills_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let handler = prepare(json!({
        "kind": "exec",
        "command": ["sh", "-c", "echo $$ > \"$PIDS\"; sleep 1000 & echo $! >> \"$PIDS\"; wait"],
        "env": { "PIDS": pids.to_str().unwrap() },
    }));
    let task = allowed(Duration::from_secs(600));
    let running = handler.run(json!({}), &task);
    // The worker gives up on the task (its own timeout, shutdown) by
    // dropping the future once the program is up.
    let abandoned = tokio::select! {
        _ = running => panic!("the program should still be running"),
        pids = wait_for_lines(&pids, 2) => pids,
    };
    for pid in abandoned {
        wait_dead(pid).await;
    }
}

#[tokio::test]
async fn leftovers_in_the_group_are_killed_when_the_program_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = prepare(json!({
        "kind": "exec",
        // The background sleep keeps stdout open: without the group kill the
        // handler would wait for it.
        "command": ["sh", "-c", "sleep 1000 & echo $! > \"$PIDS\"; echo '{\"done\": true}'"],
        "env": { "PIDS": pids.to_str().unwrap() },
    }))
    .run(json!({}), &allowed(Duration::from_secs(600)))
    .await
    .unwrap();
    assert_eq!(out.output, json!({ "done": true }));
    let pids = wait_for_lines(&pids, 1).await;
    wait_dead(pids[0]).await;
}

#[tokio::test]
async fn unbounded_stdout_is_cut_off() {
    let err = prepare(sh("yes"))
        .run(json!({}), &allowed(Duration::from_secs(120)))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.message(),
        "exec `sh`: printed more than 16777216 bytes on stdout; killed it"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_permanent_failure() {
    let err = prepare(json!({ "kind": "exec", "command": ["/nonexistent/program-xyz"] }))
        .run(json!({}), &allowed(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message()
            .starts_with("exec `/nonexistent/program-xyz`: could not start: "),
        "{err}"
    );
}

#[tokio::test]
async fn refused_unless_exec_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let handler = prepare(json!({
        "kind": "exec",
        "command": ["touch", marker.to_str().unwrap()],
    }));
    let err = handler.preflight(&resources()).unwrap_err();
    assert_eq!(err.field(), "handler.kind");
    assert!(
        err.message().ends_with("start it with --allow-exec"),
        "{err}"
    );
    handler
        .preflight(&resources().with_allow_exec(true))
        .unwrap();

    let err = handler
        .run(json!({}), &task(resources(), Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message()
            .starts_with("handler.kind: exec handlers run programs"),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "the program ran although exec is not allowed"
    );
}
