//! `pgflow run ...` against a real database; the run is driven from the
//! test through the SQL API (as a worker would), so `run watch` sees it end.

use crate::common;

use std::time::Duration;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

fn two_steps(slug: &str, max_attempts: i32) -> serde_json::Value {
    json!({
        "slug": slug, "maxAttempts": max_attempts, "baseDelay": 1,
        "steps": [{"slug": "first"}, {"slug": "second", "dependsOn": ["first"]}]
    })
}

fn start(url: &str, slug: &str, input: &str) -> Uuid {
    let out = ok(pgflow(&["run", "start", slug, "--input", input], Some(url)));
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("not a run id ({e}): {out}"))
}

#[tokio::test]
async fn run_start_list_show_and_cancel() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("greet", 3));
    let dir = tempfile::tempdir().unwrap();
    let input_file = write(dir.path(), "input.json", r#"{"name": "Ada"}"#);

    let first = start(db.url(), "greet", r#"{"name": "Bob"}"#);
    let from_file = format!("@{}", input_file.display());
    let second = json(&["run", "start", "greet", "--input", &from_file], db.url());
    assert_eq!(second["status"], "started");
    let second: Uuid = second["run_id"].as_str().unwrap().parse().unwrap();

    let runs = json(&["run", "list", "--flow", "greet"], db.url());
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["steps_total"], 2);
    let limited = json(&["run", "list", "--limit", "1"], db.url());
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(
        json(&["run", "list", "--flow", "other"], db.url()),
        json!([])
    );

    let shown = json(&["run", "show", &second.to_string()], db.url());
    assert_eq!(shown["run"]["input"], json!({"name": "Ada"}));
    assert_eq!(shown["steps"][0]["step_slug"], "first");
    assert_eq!(shown["steps"][0]["status"], "started");
    assert_eq!(shown["steps"][0]["initial_tasks"], 1);
    assert_eq!(shown["steps"][1]["status"], "created");

    let text = ok(pgflow(&["run", "show", &first.to_string()], Some(db.url())));
    assert!(text.contains("STEP "), "{text}");
    assert!(text.contains(r#"{"name":"Bob"}"#), "{text}");

    let cancelled = json(&["run", "cancel", &first.to_string()], db.url());
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["status"], "cancelled");
    let err = fails(pgflow(
        &["run", "cancel", &first.to_string()],
        Some(db.url()),
    ));
    assert!(err.contains("its status is cancelled"), "{err}");
    let cancelled_runs = json(&["run", "list", "--status", "cancelled"], db.url());
    assert_eq!(cancelled_runs.as_array().unwrap().len(), 1);
    assert_eq!(cancelled_runs[0]["run_id"], first.to_string());

    // Watching a cancelled run ends at once with exit code 2.
    let out = pgflow(&["run", "watch", &first.to_string()], Some(db.url()));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test]
async fn run_watch_exits_zero_when_the_run_completes() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("happy", 3));
    let run_id = start(db.url(), "happy", "{}");

    let (watch, lines) = watch_lines(db.url(), run_id, 100);

    let worker = FakeWorker::register(db.pool(), "happy").await;
    assert_eq!(
        worker.complete_next(db.pool(), json!({"n": 1})).await,
        "first"
    );
    // The watcher reports the intermediate state before the run goes on.
    lines.wait_for("first", "completed");
    assert_eq!(
        worker.complete_next(db.pool(), json!({"n": 2})).await,
        "second"
    );

    let out = wait_with_limit(watch, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = lines.all();
    // Not a terminal: plain lines, one per step change, no escape codes.
    assert!(!text.contains('\x1b'), "{text}");
    assert!(text.contains(&format!("watching run {run_id}")), "{text}");
    assert!(
        text.contains("first        completed  1/1") || text.contains("first   completed  1/1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("run {run_id} completed in")),
        "{text}"
    );
    assert!(text.contains(r#"output: {"second":{"n":2}}"#), "{text}");

    let shown = json(&["run", "show", &run_id.to_string()], db.url());
    assert_eq!(shown["run"]["status"], "completed");
    assert_eq!(shown["steps"][1]["tasks_done"], 1);
    assert_eq!(shown["steps"][1]["attempts"], 1);
    assert!(shown["steps"][1]["duration_secs"].as_f64().is_some());
}

/// `run watch` re-reads a run when `pgflow_events` says it changed: with a
/// polling interval of an hour, it still follows every step and exits.
#[tokio::test]
async fn run_watch_is_woken_by_the_runs_events_not_by_polling() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("evented", 3));
    let run_id = start(db.url(), "evented", "{}");

    let (watch, lines) = watch_lines(db.url(), run_id, 3600000);
    // The first read comes after LISTEN, so nothing below can be missed.
    lines.wait_for("first", "started");
    let listening: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
          where datname = current_database() and query ilike 'listen%pgflow_events%'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(listening, 1, "run watch holds one LISTEN connection");

    let worker = FakeWorker::register(db.pool(), "evented").await;
    worker.complete_next(db.pool(), json!({"n": 1})).await;
    lines.wait_for("first", "completed");
    worker.complete_next(db.pool(), json!({"n": 2})).await;
    let out = wait_with_limit(watch, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        lines.all().contains(&format!("run {run_id} completed in")),
        "{}",
        lines.all()
    );
}

/// `pgflow run watch RUN --interval-ms MS`, with its stdout read as it comes.
fn watch_lines(url: &str, run_id: uuid::Uuid, interval_ms: u64) -> (std::process::Child, Lines) {
    let mut watch = cmd(
        &[
            "run",
            "watch",
            &run_id.to_string(),
            "--interval-ms",
            &interval_ms.to_string(),
        ],
        Some(url),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let lines = read_lines(watch.stdout.take().unwrap());
    (watch, lines)
}

/// Lines of a child's stdout, read as they come (a thread), to wait on.
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

fn read_lines(out: std::process::ChildStdout) -> Lines {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Lines(lines)
}

impl Lines {
    /// Waits until a line contains both words; the deadline only turns a hang into a failure.
    fn wait_for(&self, a: &str, b: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(a) && l.contains(b))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {a:?} and {b:?} in:\n{}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn all(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

#[tokio::test]
async fn run_start_watch_exits_one_when_the_run_fails() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("doomed", 1));
    let mut child = cmd(&["run", "start", "doomed", "--watch"], Some(db.url()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(child.stdout.take().unwrap());
    lines.wait_for("watching run", "doomed");
    let worker = FakeWorker::register(db.pool(), "doomed").await;
    worker.fail_next(db.pool(), "boom: out of luck").await;

    let out = wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = lines.all();
    assert!(text.contains("boom: out of luck"), "{text}");
    assert!(text.contains(" failed in"), "{text}");
}

#[tokio::test]
async fn run_watch_exits_one_when_the_run_fails_and_retry_resumes_it() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("doomed", 1));
    let run_id = start(db.url(), "doomed", "{}");

    let worker = FakeWorker::register(db.pool(), "doomed").await;
    worker.fail_next(db.pool(), "boom: disk full").await;

    let out = wait_with_limit(
        cmd(&["run", "watch", &run_id.to_string()], Some(db.url()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("boom: disk full"), "{text}");
    assert!(text.contains(&format!("run {run_id} failed in")), "{text}");

    let shown = ok(pgflow(
        &["run", "show", &run_id.to_string()],
        Some(db.url()),
    ));
    assert!(shown.contains("boom: disk full"), "{shown}");

    // --json watch prints the final state and keeps the exit code.
    let out = pgflow(
        &["--json", "run", "watch", &run_id.to_string()],
        Some(db.url()),
    );
    assert_eq!(out.status.code(), Some(1));
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snap["steps"][0]["status"], "failed");
    assert_eq!(snap["steps"][0]["error_message"], "boom: disk full");

    let retried = json(&["run", "retry", &run_id.to_string()], db.url());
    assert_eq!(retried["retried"], true);
    assert_eq!(retried["status"], "started");
    let err = fails(pgflow(
        &["run", "retry", &run_id.to_string()],
        Some(db.url()),
    ));
    assert!(err.contains("only a failed run can be retried"), "{err}");
}

#[tokio::test]
async fn unknown_runs_and_flows_and_bad_input_are_reported() {
    let db = TestDb::new().await;
    let _f = add_flow(db.url(), &two_steps("known", 3));
    let ghost = Uuid::new_v4().to_string();
    for sub in ["show", "watch", "cancel", "retry"] {
        let err = fails(pgflow(&["run", sub, &ghost], Some(db.url())));
        assert!(
            err.contains(&format!("unknown run {ghost}")),
            "{sub}: {err}"
        );
    }
    let err = fails(pgflow(&["run", "show", "not-a-uuid"], Some(db.url())));
    assert!(err.contains("invalid value 'not-a-uuid'"), "{err}");

    let err = fails(pgflow(&["run", "start", "ghost_flow"], Some(db.url())));
    assert!(err.contains("unknown flow \"ghost_flow\""), "{err}");
    let err = fails(pgflow(
        &["run", "start", "known", "--input", "{oops"],
        Some(db.url()),
    ));
    assert!(err.contains("--input is not valid JSON"), "{err}");
    let err = fails(pgflow(
        &[
            "run",
            "start",
            "known",
            "--input",
            "@/nonexistent/input.json",
        ],
        Some(db.url()),
    ));
    assert!(err.contains("cannot read the input file"), "{err}");
}

#[tokio::test]
async fn database_problems_say_what_to_do() {
    // Unreachable: the URL is named with its password hidden.
    let out = pgflow(
        &[
            "run",
            "list",
            "--database-url",
            "postgres://u:sekret@127.0.0.1:1/db",
        ],
        None,
    );
    let err = fails(out);
    assert!(
        err.contains("cannot connect to postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(
        err.contains("connection refused: nothing accepts connections on 127.0.0.1:1"),
        "{err}"
    );
    assert!(
        err.contains("check that PostgreSQL is running there"),
        "{err}"
    );
    assert!(!err.contains("sekret"), "{err}");

    // No URL at all.
    let err = fails(pgflow(&["workers"], None));
    assert!(err.contains("--database-url"), "{err}");

    // A database without the schema.
    let db = TestDb::empty().await;
    let err = fails(pgflow(&["flow", "list"], Some(db.url())));
    assert!(err.contains("run `pgflow install` first"), "{err}");
}
