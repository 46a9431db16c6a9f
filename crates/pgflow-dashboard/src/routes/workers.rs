//! Workers: alive, stale (no heartbeat for `stale_after`), deprecated or
//! stopped, with their last heartbeat and the tasks they run now.

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use maud::html;
use pgflow_db::dashboard::{self as q, WorkerRow};
use serde::Serialize;

use crate::error::{DashboardError, JsonError};
use crate::state::AppState;
use crate::views::{self, badge, Page};

/// Most workers listed (newest first).
const MAX_WORKERS: i64 = 500;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/workers", get(page))
        .route("/api/workers", get(json))
}

/// The workers page's JSON.
#[derive(Debug, Serialize)]
pub struct WorkersView {
    /// Seconds without a heartbeat after which a worker is `stale`.
    pub stale_after_secs: f64,
    /// Workers, newest first.
    pub workers: Vec<WorkerRow>,
}

async fn load(state: &AppState) -> Result<WorkersView, DashboardError> {
    let stale_after_secs = state.settings.stale_after.as_secs_f64();
    let workers = q::workers(&state.pool, stale_after_secs, MAX_WORKERS).await?;
    Ok(WorkersView {
        stale_after_secs,
        workers,
    })
}

async fn json(State(state): State<AppState>) -> Result<Json<WorkersView>, JsonError> {
    Ok(Json(load(&state).await?))
}

async fn page(State(state): State<AppState>) -> Result<Html<String>, DashboardError> {
    let view = load(&state).await?;
    let count = |s: &str| view.workers.iter().filter(|w| w.state == s).count();
    let body = html! {
        h1 { "Workers" }
        p.facts #workers-summary {
            (count("alive")) " alive · " (count("stale")) " stale (no heartbeat for " (views::duration(view.stale_after_secs)) ") · "
            (count("deprecated")) " deprecated · " (count("stopped")) " stopped"
        }
        table.list #workers-table {
            thead { tr { th { "worker" } th { "queue" } th { "function" } th { "state" } th { "last heartbeat" } th { "tasks in flight" } th { "started (UTC)" } } }
            tbody #workers-body {
                @for w in &view.workers {
                    tr data-worker=(w.worker_id) {
                        td.mono { (w.worker_id) }
                        td { (w.queue_name) }
                        td { (w.function_name) }
                        td { (badge(&w.state)) }
                        td { (views::duration(w.heartbeat_age_secs)) " ago" }
                        td { (w.tasks_in_flight) }
                        td { (views::time(&w.started_at)) }
                    }
                }
            }
        }
        @if view.workers.is_empty() { p.muted { "No workers have registered." } }
    };
    let meta = Page {
        title: "Workers",
        nav: "/workers",
        kind: "workers",
        source: Some("/api/workers".into()),
        run_filter: None,
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}
