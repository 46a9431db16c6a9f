//! The token login for browsers (when an auth token is set): a form that
//! takes the token and, when it matches, sets the session cookie. API
//! clients and Prometheus send `Authorization: Bearer <token>` instead.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, DOCTYPE};
use serde::Deserialize;

use crate::error::DashboardError;
use crate::security::{clear_session_cookie, secrets_match, session_cookie};
use crate::state::AppState;
use crate::views::csrf_field;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(form).post(login))
        .route("/logout", axum::routing::post(logout))
}

fn login_page(state: &AppState, error: Option<&str>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; meta name="csrf-token" content=(state.secrets.csrf_token); title { "Log in · pgflow" } link rel="stylesheet" href="/assets/app.css"; }
            body {
                header.top { span.brand { "pgflow" } }
                main.login {
                    h1 { "Log in" }
                    @if let Some(e) = error { p.error-text { (e) } }
                    form method="post" action="/login" {
                        (csrf_field(state))
                        label { "dashboard token " input type="password" name="token" autofocus autocomplete="current-password"; }
                        button type="submit" { "log in" }
                    }
                }
            }
        }
    }
    .into_string()
}

async fn form(State(state): State<AppState>) -> Html<String> {
    Html(login_page(&state, None))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The token.
    pub token: String,
}

async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let Some(expected) = state.settings.auth_token.as_deref() else {
        return Redirect::to("/runs").into_response();
    };
    if !secrets_match(form.token.trim(), expected) {
        let status = DashboardError::Unauthorized.status();
        return (status, Html(login_page(&state, Some("wrong token")))).into_response();
    }
    (
        [(
            header::SET_COOKIE,
            session_cookie(&state.secrets.session_id),
        )],
        Redirect::to("/runs"),
    )
        .into_response()
}

async fn logout() -> Response {
    (
        [(header::SET_COOKIE, clear_session_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}
