//! `/metrics` scraped over HTTP and parsed with a Prometheus text-format
//! parser; the task counters move by exactly the number of tasks run.

use crate::support;

use prometheus_parse::{Scrape, Value};
use serde_json::json;
use support::{drive, happy, Fixture, Outcome};

async fn scrape(fx: &Fixture) -> Scrape {
    let response = fx.http.get(fx.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.text().await.unwrap();
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition text")
}

/// The value of `metric` with exactly these labels; `None` when absent.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{metric}: unexpected sample {other:?}"),
        })
}

fn get(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    value(scrape, metric, labels).unwrap_or_else(|| panic!("{metric} {labels:?} missing"))
}

#[tokio::test]
async fn metrics_describe_runs_queues_workers_and_count_tasks_exactly() {
    let fx = Fixture::new().await;
    let before = scrape(&fx).await;
    for status in ["started", "completed", "failed", "cancelled"] {
        assert_eq!(
            get(
                &before,
                "pgflow_runs",
                &[("flow", "demo"), ("status", status)]
            ),
            1.0,
            "{status}"
        );
    }
    // The started run's two map tasks are claimed: live, not visible.
    assert_eq!(get(&before, "pgflow_queue_depth", &[("flow", "demo")]), 2.0);
    assert_eq!(
        get(
            &before,
            "pgflow_queue_visible_messages",
            &[("flow", "demo")]
        ),
        0.0
    );
    assert_eq!(
        get(&before, "pgflow_tasks_in_flight", &[("flow", "demo")]),
        2.0
    );
    assert!(
        get(
            &before,
            "pgflow_queue_archived_messages",
            &[("flow", "demo")]
        ) >= 6.0
    );
    assert!(value(
        &before,
        "pgflow_queue_oldest_message_age_seconds",
        &[("flow", "demo")]
    )
    .is_some());
    assert_eq!(
        get(&before, "pgflow_workers_alive", &[("queue", "demo")]),
        1.0
    );
    assert_eq!(get(&before, "pgflow_dashboard_listening", &[]), 1.0);
    // Items: 3 completed (completed run) + 2 started (started run).
    let items = [("flow", "demo"), ("step", "items")];
    assert_eq!(get(&before, "pgflow_tasks_started_total", &items), 5.0);
    assert_eq!(get(&before, "pgflow_tasks_completed_total", &items), 3.0);
    assert_eq!(
        get(
            &before,
            "pgflow_tasks_failed_total",
            &[("flow", "demo"), ("step", "fetch")]
        ),
        1.0
    );

    // Run one more whole run (fetch, 4 items, report) and one failing fetch.
    let pool = fx.pool();
    pgflow_db::api::start_flow(pool, "demo", &json!({"n": 10}), None)
        .await
        .unwrap();
    let ran = drive(pool, "demo", fx.worker, |task| {
        match task.step_slug.as_str() {
            "fetch" => Outcome::Complete(json!([1, 2, 3, 4])),
            _ => happy(task),
        }
    })
    .await;
    assert_eq!(ran, 6);
    pgflow_db::api::start_flow(pool, "demo", &json!({"n": 11}), None)
        .await
        .unwrap();
    let ran = drive(pool, "demo", fx.worker, |_| Outcome::Fail("nope".into())).await;
    assert_eq!(ran, 1);

    let after = scrape(&fx).await;
    let delta = |metric: &str, step: &str| {
        let labels = [("flow", "demo"), ("step", step)];
        value(&after, metric, &labels).unwrap_or(0.0)
            - value(&before, metric, &labels).unwrap_or(0.0)
    };
    assert_eq!(delta("pgflow_tasks_started_total", "fetch"), 2.0);
    assert_eq!(delta("pgflow_tasks_completed_total", "fetch"), 1.0);
    assert_eq!(delta("pgflow_tasks_failed_total", "fetch"), 1.0);
    assert_eq!(delta("pgflow_tasks_started_total", "items"), 4.0);
    assert_eq!(delta("pgflow_tasks_completed_total", "items"), 4.0);
    assert_eq!(delta("pgflow_tasks_failed_total", "items"), 0.0);
    assert_eq!(delta("pgflow_tasks_started_total", "report"), 1.0);
    assert_eq!(delta("pgflow_tasks_completed_total", "report"), 1.0);
    assert_eq!(
        get(
            &after,
            "pgflow_runs",
            &[("flow", "demo"), ("status", "completed")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &after,
            "pgflow_runs",
            &[("flow", "demo"), ("status", "failed")]
        ),
        2.0
    );
}
