//! `pgflow demo` end to end, with and without a database given.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use pgflow_tests::TestDb;

const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn demo_starts_and_removes_its_own_cluster_without_a_database_url() {
    let child = cmd(&["demo", "--workers", "2"], None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, LIMIT);
    let text = ok(out);
    assert!(
        text.contains("starting a throwaway PostgreSQL cluster"),
        "{text}"
    );
    assert!(text.contains("started 2 workers"), "{text}");
    assert!(text.contains("count_words  completed  11/11"), "{text}");
    assert!(
        text.contains("\"report\": \"\\\"On workflows\\\": 87 words"),
        "{text}"
    );
    // No commands for a cluster that is about to vanish: the way to keep it,
    // with this binary's real path instead.
    assert!(!text.contains("psql 'postgres://"), "{text}");
    assert!(
        text.contains(&format!("{} demo --keep", env!("CARGO_BIN_EXE_pgflow"))),
        "{text}"
    );
    assert!(
        text.contains("throwaway cluster stopped and removed"),
        "{text}"
    );

    // The cluster is gone: its port no longer answers.
    let url_line = text
        .lines()
        .find(|l| l.contains("PostgreSQL is up at"))
        .unwrap();
    let port: u16 = url_line
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn demo_keep_leaves_the_cluster_with_commands_that_work() {
    let child = cmd(&["demo", "--workers", "1", "--keep"], None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = ok(wait_with_limit(child, LIMIT));
    let stop = text
        .lines()
        .skip_while(|l| !l.contains("stop and remove it with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no stop command in:\n{text}"))
        .trim()
        .to_string();
    // Remove the cluster whatever the assertions say.
    let checks = std::panic::catch_unwind(|| {
        // The throwaway cluster takes TCP connections with a random password
        // only: the printed commands carry it (they are for this user's shell).
        let export = text
            .lines()
            .find(|l| l.contains("export DATABASE_URL='postgres://postgres:"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(export.contains("@127.0.0.1:"), "{export}");
        assert!(!export.contains("postgres:***@"), "{export}");
        assert!(text.contains("/psql 'postgres://"), "{text}");
        assert!(
            text.contains(&format!(
                "{} --database-url 'postgres://",
                env!("CARGO_BIN_EXE_pgflow")
            )),
            "{text}"
        );
        let url_line = text
            .lines()
            .find(|l| l.contains("PostgreSQL is up at"))
            .unwrap();
        let url = url_line.rsplit("up at ").next().unwrap().trim();
        // The printed pgflow command works: the cluster is still up.
        let shown = ok(pgflow(&["flow", "show", "demo_pipeline"], Some(url)));
        assert!(shown.contains("count_words"), "{shown}");
    });
    let removed = std::process::Command::new("sh")
        .args(["-c", &stop])
        .output()
        .unwrap();
    checks.unwrap();
    assert!(removed.status.success(), "{stop}: {removed:?}");
}

#[tokio::test]
async fn demo_uses_the_given_database_and_prints_json() {
    let db = TestDb::empty().await;
    let child = cmd(&["--json", "demo"], Some(db.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, LIMIT);
    let text = ok(out);
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(result["run"]["run"]["status"], "completed");
    let report = result["run"]["run"]["output"]["report"].as_str().unwrap();
    assert!(report.contains("87 words"), "{report}");
    let steps = result["run"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|s| s["status"] == "completed"));

    // What it left behind is inspectable with the other subcommands.
    let flows = json(&["flow", "list"], db.url());
    assert_eq!(flows[0]["flow_slug"], "demo_pipeline");
    assert_eq!(flows[0]["runs_completed"], 1);
    let workers = json(&["workers"], db.url());
    assert_eq!(workers.as_array().unwrap().len(), 3);
    assert!(workers
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["state"] == "stopped"));

    // A second demo on the same database reuses the flow.
    let again = ok(pgflow(&["demo", "--workers", "1"], Some(db.url())));
    assert!(again.contains("demo run completed"), "{again}");
}

#[tokio::test]
async fn demo_serve_runs_workers_until_sigterm() {
    let db = TestDb::new().await;
    let child = cmd(&["demo", "--serve", "--workers", "2"], Some(db.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait for both workers to register (they compile the flow first).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers = json(&["workers", "--active"], db.url());
        if workers.as_array().unwrap().len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "workers did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let input = r#"{"title": "t", "text": "one two three four five", "chunk_words": 2}"#;
    let out = pgflow(
        &["run", "start", "demo_pipeline", "--watch", "--input", input],
        Some(db.url()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("5 words"), "{}", stdout(&out));

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = wait_with_limit(child, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json(&["workers", "--active"], db.url()),
        serde_json::json!([])
    );
}
