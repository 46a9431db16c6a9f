//! `pgflow worker` connected as the least-privileged worker role that
//! `pgflow.setup_roles()` creates (no pgmq privileges, no table writes): it
//! loads the flows with built-in handlers, runs them, and postpones a retry as
//! a server's `Retry-After` asked, while the owner starts the run.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use pgflow_tests::TestDb;
use serde_json::Value;

/// An HTTP server that answers its first request with 429 and
/// `Retry-After: 4`, and every later one with 200; returns when each came.
async fn rate_limited_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<Instant>>>) {
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let hits = seen.clone();
    let app = axum::Router::new().route(
        "/limited",
        get(move || {
            let hits = hits.clone();
            async move {
                let mut hits = hits.lock().unwrap();
                hits.push(Instant::now());
                if hits.len() == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "4")],
                        "slow down",
                    )
                } else {
                    (StatusCode::OK, [("retry-after", "0")], "fine")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// Creates this test's own worker and reader roles with `setup_roles` (own
/// names: roles are cluster-wide and tests run in parallel) and a login role
/// member of the worker role; returns a URL that logs in as it.
async fn worker_role_url(db: &TestDb) -> String {
    let worker_role = format!("wr_worker_{}", db.name());
    let login = format!("wr_login_{}", db.name());
    sqlx::query("select pgflow.setup_roles($1, $2)")
        .bind(&worker_role)
        .bind(format!("wr_reader_{}", db.name()))
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(&format!(
        "create role \"{login}\" login password 'pw' in role \"{worker_role}\""
    ))
    .execute(db.pool())
    .await
    .unwrap();
    let (_, host_and_db) = db.url().split_once('@').expect("user in the test URL");
    format!("postgres://{login}:pw@{host_and_db}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgflow_worker_runs_as_the_worker_role_and_honours_retry_after() {
    let db = TestDb::new().await;
    let (addr, seen) = rate_limited_server().await;
    // Base delay 1 s: without Retry-After the retry would come after 1-2 s.
    let flow = format!(
        r#"
slug: limited
maxAttempts: 3
baseDelay: 1
steps:
  - slug: fetch
    handler: {{kind: http, url: "http://{addr}/limited", output: text, timeout: 10}}
  - slug: report
    dependsOn: [fetch]
    handler: {{kind: template, template: "got {{{{ fetch.body }}}} ({{{{ fetch.status }}}})"}}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "limited.yaml", &flow);
    ok(pgflow(
        &["flow", "add", path.to_str().unwrap()],
        Some(db.url()),
    ));
    let worker_url = worker_role_url(&db).await;

    // The role really is least-privileged: no pgmq, no starting runs.
    let as_worker = sqlx::PgPool::connect(&worker_url).await.unwrap();
    for sql in [
        "select * from pgmq.read('limited', 30, 1)",
        "select pgflow.start_flow('limited', '{}')",
    ] {
        let e = sqlx::query(sql).execute(&as_worker).await.unwrap_err();
        assert!(
            e.to_string().contains("permission denied"),
            "{sql} should be refused to the worker role: {e}"
        );
    }
    as_worker.close().await;

    let worker = cmd(&["worker", "--concurrency", "2"], Some(&worker_url))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = db.url().to_string();
    let watched = tokio::task::spawn_blocking(move || {
        wait_with_limit(
            cmd(
                &["--json", "run", "start", "limited", "--watch"],
                Some(&url),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();

    // Stop the worker gracefully whatever happened, then judge.
    let pid = worker.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let worker_out =
        tokio::task::spawn_blocking(move || wait_with_limit(worker, Duration::from_secs(60)))
            .await
            .unwrap();
    let worker_err = stderr(&worker_out);
    assert!(worker_out.status.success(), "worker: {worker_err}");
    assert!(
        !worker_err.contains("permission denied") && !worker_err.contains("could not postpone"),
        "the worker role lacked a privilege: {worker_err}"
    );
    let snap: Value = serde_json::from_str(&ok(watched)).unwrap();
    assert_eq!(snap["run"]["status"], "completed", "{snap}\n{worker_err}");
    assert_eq!(snap["run"]["output"]["report"], "got fine (200)", "{snap}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one 429, then one success");
    let gap = seen[1] - seen[0];
    assert!(
        gap >= Duration::from_secs(4),
        "retried after {gap:?}, before Retry-After (4 s): {worker_err}"
    );
}
