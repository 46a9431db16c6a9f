//! `GET /metrics`: Prometheus metrics, computed from SQL at scrape time (so
//! any number of dashboards agree, and nothing is lost across restarts).
//! Rendered by `prometheus-client` into a registry built per scrape, so a
//! deleted flow's series disappear with it. Names and meanings (also in the
//! README):
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `pgflow_runs` | gauge | flow, status | runs in `pgflow.runs` now |
//! | `pgflow_queue_depth` | gauge | flow | live messages in the flow's queue (visible or claimed) |
//! | `pgflow_queue_visible_messages` | gauge | flow | messages a worker could read now |
//! | `pgflow_queue_oldest_message_age_seconds` | gauge | flow | age of the oldest live message (0 when empty) |
//! | `pgflow_queue_archived_messages` | gauge | flow | messages in the queue's archive |
//! | `pgflow_tasks_in_flight` | gauge | flow | tasks `started` now |
//! | `pgflow_workers_alive` | gauge | queue | workers not stopped with a heartbeat within `stale_after` |
//! | `pgflow_tasks_started_total` | counter | flow, step | task attempts started (each claim counts) |
//! | `pgflow_tasks_completed_total` | counter | flow, step | tasks completed |
//! | `pgflow_tasks_failed_total` | counter | flow, step | tasks failed for good (out of attempts) |
//! | `pgflow_dashboard_live_clients` | gauge | | open server-sent-event streams of this dashboard |
//! | `pgflow_dashboard_listening` | gauge | | 1 while its `LISTEN` connection is up |
//!
//! The `_total` counters count the task rows the database holds: they only
//! grow while runs go on, and drop when `prune` deletes old runs (Prometheus
//! treats a drop as a counter reset).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::DashboardError;
use crate::state::AppState;

/// Content type of the OpenMetrics text format `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn counter_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

/// Queries the database and renders every metric as OpenMetrics text.
pub async fn render(state: &AppState) -> Result<String, DashboardError> {
    let stale_after = state.settings.stale_after.as_secs_f64();
    let runs = pgflow_db::dashboard::run_counts(&state.pool).await?;
    let queues = pgflow_db::dashboard::queues(&state.pool).await?;
    let workers = pgflow_db::dashboard::workers_alive(&state.pool, stale_after).await?;
    let tasks = pgflow_db::dashboard::task_counts(&state.pool).await?;

    let mut registry = Registry::with_prefix("pgflow");
    let family = gauge_family(
        &mut registry,
        "runs",
        "Runs in pgflow.runs, by flow and status.",
    );
    for r in &runs {
        family
            .get_or_create(&labels(&[("flow", &r.flow_slug), ("status", &r.status)]))
            .set(r.runs);
    }
    let depth = gauge_family(
        &mut registry,
        "queue_depth",
        "Live messages in the flow's queue (visible or claimed).",
    );
    let visible = gauge_family(
        &mut registry,
        "queue_visible_messages",
        "Messages a worker could read now.",
    );
    let oldest = gauge_family(
        &mut registry,
        "queue_oldest_message_age_seconds",
        "Age of the oldest live message, 0 when the queue is empty.",
    );
    let archived = gauge_family(
        &mut registry,
        "queue_archived_messages",
        "Messages in the queue's archive.",
    );
    let in_flight = gauge_family(
        &mut registry,
        "tasks_in_flight",
        "Tasks started and not yet reported.",
    );
    for q in &queues {
        let l = labels(&[("flow", &q.flow_slug)]);
        in_flight
            .get_or_create(&l)
            .set(i64::from(q.tasks_in_flight));
        if !q.has_queue {
            continue;
        }
        depth.get_or_create(&l).set(q.total.unwrap_or(0));
        visible.get_or_create(&l).set(q.visible.unwrap_or(0));
        oldest
            .get_or_create(&l)
            .set(i64::from(q.oldest_age_secs.unwrap_or(0)));
        archived.get_or_create(&l).set(q.archived.unwrap_or(0));
    }
    let alive = gauge_family(
        &mut registry,
        "workers_alive",
        "Workers not stopped whose last heartbeat is recent.",
    );
    for w in &workers {
        alive
            .get_or_create(&labels(&[("queue", &w.queue_name)]))
            .set(w.alive);
    }
    let started = counter_family(
        &mut registry,
        "tasks_started",
        "Task attempts started (each claim counts), from the task rows held.",
    );
    let completed = counter_family(
        &mut registry,
        "tasks_completed",
        "Tasks completed, from the task rows held.",
    );
    let failed = counter_family(
        &mut registry,
        "tasks_failed",
        "Tasks failed for good (out of attempts), from the task rows held.",
    );
    for t in &tasks {
        let l = labels(&[("flow", &t.flow_slug), ("step", &t.step_slug)]);
        started.get_or_create(&l).inc_by(t.started.max(0) as u64);
        completed
            .get_or_create(&l)
            .inc_by(t.completed.max(0) as u64);
        failed.get_or_create(&l).inc_by(t.failed.max(0) as u64);
    }
    let clients: Gauge = Gauge::default();
    clients.set(state.events.subscribers() as i64);
    registry.register(
        "dashboard_live_clients",
        "Open server-sent-event streams of this dashboard.",
        clients,
    );
    let listening: Gauge = Gauge::default();
    listening.set(i64::from(state.events.is_listening()));
    registry.register(
        "dashboard_listening",
        "1 while the dashboard's LISTEN connection is up.",
        listening,
    );

    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|e| DashboardError::BadRequest(format!("encoding metrics: {e}")))?;
    Ok(text)
}

async fn scrape(State(state): State<AppState>) -> Result<Response, DashboardError> {
    let text = render(&state).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
