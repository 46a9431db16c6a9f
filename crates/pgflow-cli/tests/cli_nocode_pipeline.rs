//! The no-code example end to end: `examples/flows/article_digest.yaml`
//! registered with `pgflow flow add`, served by `pgflow worker`, started with
//! `pgflow run start --watch`, against a local article server and a fake
//! OpenAI-compatible endpoint (axum, started here). The fake endpoint fails
//! its first call with a 500 so the retry path runs too; the usage the run
//! records must equal, exactly, what the endpoint reported.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use common::*;
use pgflow_tests::TestDb;
use serde_json::{json, Value};

const PARAGRAPHS: [&str; 4] = [
    "Postgres keeps the whole workflow state in one place and that is great",
    "",
    "Workers claim tasks from queues and report results back",
    "Retries happen without anyone writing retry loops and that is great too",
];

#[derive(Default)]
pub(crate) struct Llm {
    calls: usize,
    /// (prompt tokens, completion tokens) of every successful reply.
    replies: Vec<(u64, u64)>,
}

pub(crate) async fn serve(llm: Arc<Mutex<Llm>>) -> SocketAddr {
    let article = get(|| async {
        Json(json!({"title": "Why Postgres workflows", "paragraphs": PARAGRAPHS}))
    });
    let completions = post(move |headers: HeaderMap, Json(body): Json<Value>| {
        let llm = llm.clone();
        async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer test-key")
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": "bad key"}})),
                );
            }
            let mut llm = llm.lock().unwrap();
            llm.calls += 1;
            if llm.calls == 1 {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": {"message": "overloaded, try again"}})),
                );
            }
            let prompt = body["messages"][1]["content"].as_str().unwrap_or_default();
            let paragraph = prompt.lines().last().unwrap_or_default();
            let words: Vec<&str> = paragraph.split_whitespace().collect();
            let summary = words[..words.len().min(4)].join(" ");
            let tone = if paragraph.contains("great") {
                "positive"
            } else {
                "neutral"
            };
            let content = json!({"summary": summary, "tone": tone}).to_string();
            let usage = (
                prompt.split_whitespace().count() as u64 + 20,
                9 + words.len() as u64,
            );
            llm.replies.push(usage);
            (
                StatusCode::OK,
                Json(json!({
                    "model": "gpt-4o-mini-2024-07-18",
                    "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1},
                })),
            )
        }
    });
    let app = axum::Router::new()
        .route("/articles/42", article)
        .route("/v1/chat/completions", completions);
    serve_app(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_digest_example_runs_end_to_end_with_usage() {
    let db = TestDb::new().await;
    let llm = Arc::new(Mutex::new(Llm::default()));
    let addr = serve(llm.clone()).await;

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/flows/article_digest.yaml"
    ))
    .unwrap()
    .replace("http://127.0.0.1:8089", &format!("http://{addr}"));
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "article_digest.yaml", &example);
    let added = json(&["flow", "add", path.to_str().unwrap()], db.url());
    assert_eq!(added["handlers"], 5, "{added}");
    sqlx::query("insert into pgflow.model_prices values ('gpt-4o-mini', 0.15, 0.60)")
        .execute(db.pool())
        .await
        .unwrap();

    let worker = cmd(&["worker", "--concurrency", "4"], Some(db.url()))
        .env("OPENAI_API_KEY", "test-key")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"source_url": format!("http://{addr}/articles/42")}).to_string();
    let url = db.url().to_string();
    let watched = tokio::task::spawn_blocking(move || {
        wait_with_limit(
            cmd(
                &[
                    "--json",
                    "run",
                    "start",
                    "article_digest",
                    "--watch",
                    "--input",
                    &input,
                ],
                Some(&url),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
            Duration::from_secs(120),
        )
    })
    .await
    .unwrap();

    // Stop the worker gracefully whatever happened, then judge.
    let worker_out = tokio::task::spawn_blocking(move || terminate(worker))
        .await
        .unwrap();
    let snap: Value = serde_json::from_str(&ok(watched)).unwrap();
    assert!(
        worker_out.status.success(),
        "worker: {}",
        stderr(&worker_out)
    );

    assert_eq!(snap["run"]["status"], "completed", "{snap}");
    let report = snap["run"]["output"]["report"].as_str().unwrap();
    assert_eq!(
        report,
        "# Why Postgres workflows\n\n- Postgres keeps the whole\n- Workers claim tasks from\n- Retries happen without anyone\n\nTone: neutral 1, positive 2"
    );

    // Usage: three paragraphs summarised, one 500 before (no usage), all
    // counted once; the view and `run show` agree with the fake's numbers.
    let run_id = snap["run"]["run_id"].as_str().unwrap().to_string();
    let (calls, replies) = {
        let llm = llm.lock().unwrap();
        (llm.calls, llm.replies.clone())
    };
    assert_eq!(calls, 4);
    let input_tokens: u64 = replies.iter().map(|r| r.0).sum();
    let output_tokens: u64 = replies.iter().map(|r| r.1).sum();
    let row: (i64, i64, i64, i64, f64) = sqlx::query_as(
        "select calls, abandoned_calls, input_tokens, output_tokens, cost_usd::float8
           from pgflow.run_usage where run_id = $1::uuid",
    )
    .bind(&run_id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(row.0, 3);
    assert_eq!(row.1, 0);
    assert_eq!(row.2 as u64, input_tokens);
    assert_eq!(row.3 as u64, output_tokens);
    let cost = (input_tokens as f64 * 0.15 + output_tokens as f64 * 0.60) / 1e6;
    assert!((row.4 - cost).abs() < 1e-12, "{} vs {cost}", row.4);

    let shown = json(&["run", "show", &run_id], db.url());
    let steps = shown["usage"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{shown}");
    assert_eq!(steps[0]["step_slug"], "summarize");
    assert_eq!(steps[0]["input_tokens"], json!(input_tokens));
    assert_eq!(
        shown["usage"]["total"]["output_tokens"],
        json!(output_tokens)
    );
    let text = ok(pgflow(&["run", "show", &run_id], Some(db.url())));
    assert!(text.contains("gpt-4o-mini-2024-07-18"), "{text}");
}
