//! Live updates: one `LISTEN` connection per dashboard process, however many
//! server-sent-event clients; each client gets the events of its run.

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use support::{drive, Fixture, Outcome};

/// Backends of the dashboard in pg_stat_activity: (LISTEN connections, all).
async fn backends(fx: &Fixture) -> (i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where application_name = $1), count(*)
           from pg_stat_activity
          where datname = current_database() and application_name in ($1, $2)",
    )
    .bind(pgflow_dashboard::LISTEN_APPLICATION_NAME)
    .bind(pgflow_dashboard::APPLICATION_NAME)
    .fetch_one(fx.pool())
    .await
    .unwrap()
}

/// Reads an SSE stream until a `pgflow` event mentioning `needle` arrives.
async fn wait_for_event<S, B>(stream: &mut S, needle: &str) -> String
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(
                chunk.expect("stream chunk").as_ref(),
            ));
            if let Some(at) = text.find("event: pgflow") {
                if text[at..].contains(needle) {
                    return;
                }
            }
        }
        panic!("stream ended before an event with {needle}: {text}");
    })
    .await
    .unwrap_or_else(|_| panic!("no event with {needle} within 30 s: {text}"));
    text
}

#[tokio::test]
async fn twenty_five_live_clients_share_one_listen_connection() {
    let fx = Fixture::new().await;
    let (listen_before, _) = backends(&fx).await;
    assert_eq!(listen_before, 1, "one LISTEN connection");
    // Warm the query pool so its size is settled before counting.
    for _ in 0..3 {
        fx.get_json("/api/runs").await;
    }
    let (_, total_before) = backends(&fx).await;

    let run = fx.runs.started;
    let mut streams = Vec::new();
    for i in 0..25 {
        // Half watch the run, half watch everything.
        let path = if i % 2 == 0 {
            format!("/events?run={run}")
        } else {
            "/events".to_owned()
        };
        let response = fx.http.get(fx.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut stream = response.bytes_stream();
        // The hello event says the stream is open.
        let mut hello = String::new();
        while !hello.contains("event: hello") {
            hello.push_str(&String::from_utf8_lossy(
                &stream.next().await.unwrap().unwrap(),
            ));
        }
        streams.push(stream);
    }
    assert_eq!(
        fx.dashboard.as_ref().unwrap().state().events.subscribers(),
        25
    );
    let (listen_open, total_open) = backends(&fx).await;
    assert_eq!(
        listen_open, 1,
        "still one LISTEN connection with 25 clients"
    );
    assert_eq!(total_open, total_before, "live clients open no connection");

    // A transition of the watched run reaches every client, ids and status only.
    drive(fx.pool(), "demo", fx.worker, |_| Outcome::Keep).await;
    sqlx::query("select pgflow.complete_task($1, 'items', 0, $2)")
        .bind(run)
        .bind(json!({"secret": "not in events"}))
        .execute(fx.pool())
        .await
        .unwrap();
    sqlx::query("select pgflow.complete_task($1, 'items', 1, '1')")
        .bind(run)
        .execute(fx.pool())
        .await
        .unwrap();
    for stream in &mut streams {
        let text = wait_for_event(stream, "step:items:completed").await;
        assert!(text.contains(&run.to_string()));
        assert!(
            !text.contains("not in events"),
            "events carry no outputs: {text}"
        );
    }
    let (listen_after, total_after) = backends(&fx).await;
    assert_eq!(listen_after, 1);
    assert_eq!(total_after, total_before);
}

#[tokio::test]
async fn a_run_filtered_stream_skips_other_runs() {
    let fx = Fixture::new().await;
    let other = pgflow_db::api::start_flow(fx.pool(), "demo", &json!({}), None)
        .await
        .unwrap()
        .run_id;
    let response = fx
        .http
        .get(fx.url(&format!("/events?run={other}")))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    // An event of another run first, then one of ours.
    pgflow_db::api::cancel_run(fx.pool(), fx.runs.started)
        .await
        .unwrap();
    pgflow_db::api::cancel_run(fx.pool(), other).await.unwrap();
    let text = wait_for_event(&mut stream, "run:cancelled").await;
    assert!(text.contains(&other.to_string()));
    assert!(!text.contains(&fx.runs.started.to_string()), "{text}");
    let (status, _) = fx.get("/events?run=nope").await;
    assert_eq!(status, 404);
}
