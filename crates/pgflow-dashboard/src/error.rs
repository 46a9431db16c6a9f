//! The dashboard's errors and how they become responses, in one place: an
//! escaped HTML page for pages, `{"error": "..."}` for JSON endpoints (see
//! [`JsonError`]).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use pgflow_db::api::ApiError;

use crate::views;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A query parameter or form field is invalid; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// The run, flow or task does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The auth token is required and was not given (or was wrong).
    #[error("authentication required: give the dashboard's token")]
    Unauthorized,
    /// Refused: actions disabled, CSRF check failed, foreign host or origin.
    #[error("{0}")]
    Forbidden(String),
    /// The request is valid but the state does not allow it (e.g. cancel a
    /// finished run); nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// A database call failed.
    #[error(transparent)]
    Db(#[from] ApiError),
}

impl DashboardError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::NotFound(_) => StatusCode::NOT_FOUND,
            DashboardError::Unauthorized => StatusCode::UNAUTHORIZED,
            DashboardError::Forbidden(_) => StatusCode::FORBIDDEN,
            DashboardError::Conflict(_) => StatusCode::CONFLICT,
            DashboardError::Db(err) => match err.sqlstate().as_deref() {
                // Raised by pgflow for bad input (unknown flow, invalid
                // input, too large): the caller's fault, nothing changed.
                Some(code) if code.starts_with("22") || code.starts_with("23") => {
                    StatusCode::BAD_REQUEST
                }
                Some("P0001") | Some("P0002") => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// What to tell the user.
    pub fn message(&self) -> String {
        match self {
            DashboardError::Db(err) => match err.db_message() {
                Some(message) if self.status() == StatusCode::BAD_REQUEST => message.to_owned(),
                _ => err.to_string(),
            },
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!("dashboard: {self}");
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let page = views::error_page(status, &self.message());
        (status, Html(page.into_string())).into_response()
    }
}

/// A [`DashboardError`] answered as JSON, for `/api/` endpoints and JSON
/// clients of the actions.
#[derive(Debug)]
pub struct JsonError(pub DashboardError);

impl<E: Into<DashboardError>> From<E> for JsonError {
    fn from(err: E) -> Self {
        JsonError(err.into())
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        self.0.log();
        let body = serde_json::json!({ "error": self.0.message() });
        (self.0.status(), Json(body)).into_response()
    }
}
