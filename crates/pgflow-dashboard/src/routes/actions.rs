//! Actions: cancel a run, retry a failed run, start a run with JSON input.
//! Only with `allow_actions` (else the buttons are not rendered and every
//! route here answers 403); every POST has already passed the CSRF and
//! origin checks of [`crate::security::guard`]. Browsers get a redirect to
//! the run page, JSON clients (`Accept: application/json`) a JSON answer.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use maud::{html, Markup};
use pgflow_db::dashboard::RunOverview;
use serde::Deserialize;
use serde_json::{json, Value};

use super::run_id;
use crate::error::{DashboardError, JsonError};
use crate::state::AppState;
use crate::views::csrf_field;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/cancel", post(cancel))
        .route("/runs/{id}/retry", post(retry))
        .route("/flows/{slug}/start", post(start))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn answer(headers: &HeaderMap, result: Result<(Value, String), DashboardError>) -> Response {
    match (result, wants_json(headers)) {
        (Ok((body, _)), true) => Json(body).into_response(),
        (Ok((_, location)), false) => Redirect::to(&location).into_response(),
        (Err(err), true) => JsonError(err).into_response(),
        (Err(err), false) => err.into_response(),
    }
}

fn allowed(state: &AppState) -> Result<(), DashboardError> {
    if state.settings.allow_actions {
        Ok(())
    } else {
        Err(DashboardError::Forbidden(
            "actions are disabled: this dashboard is read-only (start it with --allow-actions)"
                .into(),
        ))
    }
}

async fn status_of(state: &AppState, id: uuid::Uuid) -> Result<String, DashboardError> {
    Ok(pgflow_db::inspect::get_run(&state.pool, id)
        .await?
        .ok_or_else(|| DashboardError::NotFound(format!("no run {id}")))?
        .status
        .to_string())
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        allowed(&state)?;
        let id = run_id(&id)?;
        let status = status_of(&state, id).await?;
        if !pgflow_db::api::cancel_run(&state.pool, id).await? {
            return Err(DashboardError::Conflict(format!(
                "run {id} is {status}: only a started run can be cancelled; nothing changed"
            )));
        }
        Ok((
            json!({ "run_id": id, "cancelled": true }),
            format!("/runs/{id}"),
        ))
    }
    .await;
    answer(&headers, result)
}

async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        allowed(&state)?;
        let id = run_id(&id)?;
        let status = status_of(&state, id).await?;
        if !pgflow_db::api::retry_run(&state.pool, id).await? {
            return Err(DashboardError::Conflict(format!(
                "run {id} is {status}: only a failed run can be retried; nothing changed"
            )));
        }
        Ok((
            json!({ "run_id": id, "retried": true }),
            format!("/runs/{id}"),
        ))
    }
    .await;
    answer(&headers, result)
}

/// The start form: the run input as JSON text.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    /// JSON text of the run input.
    pub input: String,
}

async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    form: Result<Form<StartForm>, FormRejection>,
) -> Response {
    let result = async {
        allowed(&state)?;
        let Ok(Form(form)) = form else {
            return Err(DashboardError::BadRequest(
                "input: missing; send the run input as JSON text in the form field `input`".into(),
            ));
        };
        let input: Value = serde_json::from_str(&form.input)
            .map_err(|e| DashboardError::BadRequest(format!("input: not valid JSON: {e}")))?;
        if pgflow_db::inspect::get_flow(&state.pool, &slug)
            .await?
            .is_none()
        {
            return Err(DashboardError::NotFound(format!("no flow {slug:?}")));
        }
        let run = pgflow_db::api::start_flow(&state.pool, &slug, &input, None).await?;
        Ok((
            json!({ "run_id": run.run_id, "status": run.status }),
            format!("/runs/{}", run.run_id),
        ))
    }
    .await;
    answer(&headers, result)
}

/// Cancel / retry buttons for a run page (nothing when actions are off).
pub fn run_buttons(state: &AppState, run: &RunOverview) -> Markup {
    if !state.settings.allow_actions {
        return html! {};
    }
    html! {
        div.actions #run-actions {
            @if run.status == "started" {
                form method="post" action=(format!("/runs/{}/cancel", run.run_id)) data-confirm="Cancel this run?" {
                    (csrf_field(state))
                    button.danger type="submit" { "Cancel run" }
                }
            }
            @if run.status == "failed" {
                form method="post" action=(format!("/runs/{}/retry", run.run_id)) {
                    (csrf_field(state))
                    button type="submit" { "Retry run" }
                }
            }
        }
    }
}

/// The "start a run" form of a flow page (nothing when actions are off).
pub fn start_form(state: &AppState, flow_slug: &str) -> Markup {
    if !state.settings.allow_actions {
        return html! {};
    }
    html! {
        h2 { "Start a run" }
        form.start method="post" action=(format!("/flows/{flow_slug}/start")) {
            (csrf_field(state))
            label { "input (JSON)" textarea name="input" rows="6" cols="60" spellcheck="false" { "{}" } }
            button type="submit" { "Start run" }
        }
    }
}
