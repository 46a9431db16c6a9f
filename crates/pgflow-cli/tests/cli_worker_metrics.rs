//! `pgflow worker --metrics-listen`: the worker's own Prometheus metrics,
//! scraped over HTTP and parsed with a Prometheus text parser. The counters
//! must equal, exactly, the task attempts the runs made.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;

/// `GET /metrics` from `addr`, parsed.
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("application/openmetrics-text"),
        "{head}"
    );
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `name` with exactly these labels (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.last().map_or(0.0, |b| b.count)
            }
            _ => f64::NAN,
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_metrics_count_exactly_the_attempts_made() {
    let db = TestDb::new().await;
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    ok(pgflow(
        &[
            "flow",
            "add",
            &format!("{repo}/examples/flows/word_stats.yaml"),
        ],
        Some(db.url()),
    ));
    // A step that always fails: two attempts, the first retried.
    let _flaky = add_flow(
        db.url(),
        &json!({"slug": "always_fails", "maxAttempts": 2, "baseDelay": 1, "steps": [
            {"slug": "boom", "handler": {"kind": "transform", "filter": "error(\"boom\")"}}
        ]}),
    );

    let mut worker = cmd(
        &["worker", "--metrics-listen", "127.0.0.1:0"],
        Some(db.url()),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr_lines = BufReader::new(worker.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = stderr_lines
            .next()
            .expect("the worker printed where its metrics are")
            .unwrap();
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.trim_end_matches("/metrics").to_string();
        }
    };
    // Keep draining stderr so the worker never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr_lines {});

    let before = scrape(&addr);
    assert_eq!(value(&before, "pgflow_worker_tasks_total", &[]), 0.0);

    let url = db.url().to_string();
    let runs = tokio::task::spawn_blocking(move || {
        let ok_run = start_and_watch(&url, &["word_stats", "--input", WORD_STATS_INPUT]);
        let failed_run = start_and_watch(&url, &["always_fails"]);
        (ok_run, failed_run)
    })
    .await
    .unwrap();
    assert!(runs.0.status.success(), "{}", stderr(&runs.0));
    assert_eq!(runs.1.status.code(), Some(1), "{}", stderr(&runs.1));

    let after = scrape(&addr);
    let worker_out = terminate(worker);
    assert!(worker_out.status.success());

    let tasks = |flow, step, outcome| {
        value(
            &after,
            "pgflow_worker_tasks_total",
            &[("flow", flow), ("step", step), ("outcome", outcome)],
        )
    };
    // word_stats: title, chunks, 3 map tasks (three chunks), total, report.
    for (step, n) in [
        ("title", 1.0),
        ("chunks", 1.0),
        ("count", 3.0),
        ("total", 1.0),
        ("report", 1.0),
    ] {
        assert_eq!(tasks("word_stats", step, "completed"), n, "{step}");
        assert_eq!(tasks("word_stats", step, "failed"), 0.0, "{step}");
    }
    assert_eq!(tasks("always_fails", "boom", "retried"), 1.0);
    assert_eq!(tasks("always_fails", "boom", "failed"), 1.0);
    assert_eq!(tasks("always_fails", "boom", "completed"), 0.0);
    // One handler duration per attempt; nothing left in flight.
    assert_eq!(
        value(
            &after,
            "pgflow_worker_handler_duration_seconds",
            &[("flow", "word_stats"), ("step", "count")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "pgflow_worker_handler_duration_seconds",
            &[("flow", "always_fails"), ("step", "boom")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "pgflow_worker_tasks_in_flight",
            &[("flow", "word_stats")]
        ),
        0.0
    );
    assert!(
        value(
            &after,
            "pgflow_worker_claim_batch_size",
            &[("flow", "word_stats")]
        ) >= 1.0
    );
}
