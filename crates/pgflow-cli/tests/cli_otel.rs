//! OpenTelemetry export (feature `otel`): `pgflow worker` with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local OTLP/HTTP collector
//! (axum, started here) sends one `task` span per task it ran, carrying the
//! flow, run id, step and task index, flushed when the worker stops.
#![cfg(feature = "otel")]

use crate::common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use common::*;
use pgflow_tests::TestDb;
use serde_json::Value;

/// Every span the collector received: its name and string/int attributes.
type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

async fn collector(spans: Spans) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let spans = spans.clone();
            async move {
                let request: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                    for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                        for span in scope["spans"].as_array().into_iter().flatten() {
                            let attributes = span["attributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|a| {
                                    let v = &a["value"];
                                    // int64 values are JSON strings in OTLP/JSON.
                                    let text = v["stringValue"]
                                        .as_str()
                                        .or_else(|| v["intValue"].as_str())
                                        .map(str::to_string)
                                        .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
                                        .unwrap_or_else(|| v.to_string());
                                    (a["key"].as_str().unwrap().to_string(), text)
                                })
                                .collect();
                            let name = span["name"].as_str().unwrap().to_string();
                            spans.lock().unwrap().push((name, attributes));
                        }
                    }
                }
                "{}"
            }
        }),
    );
    serve_app(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_exports_one_task_span_per_task_with_flow_run_and_step() {
    let db = TestDb::new().await;
    let spans = Spans::default();
    let addr = collector(spans.clone()).await;
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    ok(pgflow(
        &[
            "flow",
            "add",
            &format!("{repo}/examples/flows/word_stats.yaml"),
        ],
        Some(db.url()),
    ));

    let worker = cmd(&["worker"], Some(db.url()))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = db.url().to_string();
    let started = tokio::task::spawn_blocking(move || {
        start_and_watch(&url, &["word_stats", "--input", WORD_STATS_INPUT])
    })
    .await
    .unwrap();
    // SIGTERM: the worker stops and sends the spans it still holds.
    let worker_out = tokio::task::spawn_blocking(move || terminate(worker))
        .await
        .unwrap();
    assert!(worker_out.status.success(), "{}", stderr(&worker_out));
    let snap: Value = serde_json::from_str(&ok(started)).unwrap();
    let run_id = snap["run"]["run_id"].as_str().unwrap().to_string();

    let spans = spans.lock().unwrap().clone();
    let tasks: Vec<_> = spans.iter().filter(|(name, _)| name == "task").collect();
    // title, chunks, three count tasks, total, report.
    assert_eq!(tasks.len(), 7, "{spans:?}");
    for (_, attributes) in &tasks {
        assert_eq!(
            attributes.get("flow").map(String::as_str),
            Some("word_stats")
        );
        assert_eq!(attributes.get("run_id"), Some(&run_id));
    }
    let mut counted: Vec<&str> = tasks
        .iter()
        .filter(|(_, a)| a.get("step").map(String::as_str) == Some("count"))
        .map(|(_, a)| a["task_index"].as_str())
        .collect();
    counted.sort();
    assert_eq!(counted, ["0", "1", "2"], "{tasks:?}");
}
