//! All routes, one module per area; [`router`] puts them together behind the
//! security middleware ([`crate::security::guard`]).
//!
//! | path | what |
//! |---|---|
//! | `/runs`, `/api/runs` | run list, filtered and paginated |
//! | `/runs/{id}`, `/api/runs/{id}` | a run: status, progress, DAG, error, timings |
//! | `/api/runs/{id}/tasks`, `/api/runs/{id}/tasks/{step}/{index}` | its tasks, a page at a time; one task in full |
//! | `/flows`, `/flows/{slug}`, `/api/flows`, `/api/flows/{slug}` | flows, each with its DAG |
//! | `/workers`, `/api/workers` | workers: alive, stale, stopped |
//! | `/queues`, `/api/queues` | queue depth, oldest message, archive |
//! | `/events` | server-sent events (live hints) |
//! | `POST /runs/{id}/cancel`, `/runs/{id}/retry`, `/flows/{slug}/start` | actions (`--allow-actions`) |
//! | `/metrics` | Prometheus metrics |
//! | `/login`, `/logout` | the token login (when a token is set) |

pub mod actions;
pub mod assets;
pub mod auth;
pub mod events;
pub mod flows;
pub mod metrics;
pub mod queues;
pub mod run;
pub mod runs;
pub mod workers;

use axum::response::Redirect;
use axum::routing::get;
use axum::{middleware, Router};

use crate::error::DashboardError;
use crate::state::AppState;

/// Every route of the dashboard over one shared state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .merge(runs::routes())
        .merge(run::routes())
        .merge(flows::routes())
        .merge(workers::routes())
        .merge(queues::routes())
        .merge(events::routes())
        .merge(actions::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .merge(assets::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::security::guard,
        ))
        .with_state(state)
}

/// An optional query parameter: absent and empty mean "no filter".
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A page size from `limit`: `default` when absent, refused outside 1..=max.
pub(crate) fn page_size(
    value: &Option<String>,
    default: i64,
    max: i64,
) -> Result<i64, DashboardError> {
    match non_empty(value) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(DashboardError::BadRequest(format!(
                "limit: {text:?} is not a whole number from 1 to {max}"
            ))),
        },
    }
}

/// Checks a status filter against the allowed values.
pub(crate) fn status_filter(
    field: &str,
    value: &Option<String>,
    allowed: &[&str],
) -> Result<Option<String>, DashboardError> {
    match non_empty(value) {
        None => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_owned())),
        Some(s) => Err(DashboardError::BadRequest(format!(
            "{field}: {s:?} is not one of {}",
            allowed.join(", ")
        ))),
    }
}

/// Parses a run id from the path.
pub(crate) fn run_id(text: &str) -> Result<uuid::Uuid, DashboardError> {
    text.parse()
        .map_err(|_| DashboardError::NotFound(format!("no run {text:?}: not a run id (UUID)")))
}
