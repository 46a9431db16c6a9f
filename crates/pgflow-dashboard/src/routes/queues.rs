//! Queues: per flow, its pgmq queue's depth (visible / all live messages),
//! the oldest live message's age, archived messages and tasks in flight.

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use maud::html;
use pgflow_db::dashboard::{self as q, QueueRow};
use serde::Serialize;

use crate::error::{DashboardError, JsonError};
use crate::state::AppState;
use crate::views::{self, Page};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/queues", get(page))
        .route("/api/queues", get(json))
}

/// The queues page's JSON.
#[derive(Debug, Serialize)]
pub struct QueuesView {
    /// One row per flow.
    pub queues: Vec<QueueRow>,
}

async fn json(State(state): State<AppState>) -> Result<Json<QueuesView>, JsonError> {
    Ok(Json(QueuesView {
        queues: q::queues(&state.pool).await?,
    }))
}

fn num(v: Option<i64>) -> String {
    v.map_or("—".to_owned(), |n| n.to_string())
}

async fn page(State(state): State<AppState>) -> Result<Html<String>, DashboardError> {
    let queues = q::queues(&state.pool).await?;
    let body = html! {
        h1 { "Queues" }
        table.list #queues-table {
            thead { tr { th { "queue (flow)" } th { "visible" } th { "live messages" } th { "oldest message" } th { "archived" } th { "tasks in flight" } } }
            tbody #queues-body {
                @for row in &queues {
                    tr data-queue=(row.flow_slug) {
                        td { a href=(format!("/flows/{}", row.flow_slug)) { (row.flow_slug) } @if !row.has_queue { " " span.badge.status-failed { "queue missing" } } }
                        td { (num(row.visible)) }
                        td { (num(row.total)) }
                        td { (row.oldest_age_secs.map(|s| views::duration(s as f64)).unwrap_or_else(|| "—".into())) }
                        td { (num(row.archived)) }
                        td { (row.tasks_in_flight) }
                    }
                }
            }
        }
        @if queues.is_empty() { p.muted { "No flows, so no queues." } }
    };
    let meta = Page {
        title: "Queues",
        nav: "/queues",
        kind: "queues",
        source: Some("/api/queues".into()),
        run_filter: None,
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}
