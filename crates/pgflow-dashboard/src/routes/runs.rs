//! The run list: filters (flow, status, start time range), keyset pages
//! (`after` = the last row's start time and id), live refresh.

use axum::extract::{Query, RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use maud::html;
use pgflow_db::dashboard::{self as q, RunFilter, RunListRow};
use serde::{Deserialize, Serialize};

use super::{non_empty, page_size, status_filter};
use crate::error::{DashboardError, JsonError};
use crate::state::AppState;
use crate::views::{self, badge, Page};

/// Run statuses a filter may name.
pub const RUN_STATUSES: [&str; 4] = ["started", "completed", "failed", "cancelled"];
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(page))
        .route("/api/runs", get(json))
}

/// Query parameters of the run list (all optional; all bound as SQL
/// parameters after validation).
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Flow slug.
    pub flow: Option<String>,
    /// Run status.
    pub status: Option<String>,
    /// Started at or after (RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` in UTC).
    pub since: Option<String>,
    /// Started before (same formats).
    pub until: Option<String>,
    /// Page cursor from `next`.
    pub after: Option<String>,
    /// Page size, 1 to 500.
    pub limit: Option<String>,
}

/// A page of runs; `next` is the cursor of the following page, if any.
#[derive(Debug, Serialize)]
pub struct RunsPage {
    /// The runs, newest first.
    pub runs: Vec<RunListRow>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

fn timestamp(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, DashboardError> {
    let Some(text) = non_empty(value) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(at.and_utc()));
        }
    }
    Err(DashboardError::BadRequest(format!(
        "{field}: {text:?} is not a time (use RFC 3339, e.g. 2026-01-31T12:00:00Z, or YYYY-MM-DDTHH:MM in UTC)"
    )))
}

fn cursor(row: &RunListRow) -> String {
    format!(
        "{}_{}",
        row.started_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        row.run_id
    )
}

fn parse_cursor(
    value: &Option<String>,
) -> Result<Option<(DateTime<Utc>, uuid::Uuid)>, DashboardError> {
    let Some(text) = non_empty(value) else {
        return Ok(None);
    };
    let bad = || DashboardError::BadRequest(format!("after: {text:?} is not a page cursor"));
    let (at, id) = text.split_once('_').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    Ok(Some((
        at.with_timezone(&Utc),
        id.parse().map_err(|_| bad())?,
    )))
}

/// Validates the query into a database filter.
pub fn filter(query: &RunsQuery) -> Result<RunFilter, DashboardError> {
    let flow = non_empty(&query.flow).map(str::to_owned);
    if flow.as_ref().is_some_and(|f| f.len() > 128) {
        return Err(DashboardError::BadRequest(
            "flow: longer than 128 characters".into(),
        ));
    }
    Ok(RunFilter {
        flow_slug: flow,
        status: status_filter("status", &query.status, &RUN_STATUSES)?,
        since: timestamp("since", &query.since)?,
        until: timestamp("until", &query.until)?,
        after: parse_cursor(&query.after)?,
        limit: page_size(&query.limit, DEFAULT_PAGE, MAX_PAGE)?,
    })
}

async fn load(state: &AppState, query: &RunsQuery) -> Result<RunsPage, DashboardError> {
    let filter = filter(query)?;
    let runs = q::list_runs(&state.pool, &filter).await?;
    let next = (runs.len() as i64 == filter.limit)
        .then(|| runs.last().map(cursor))
        .flatten();
    Ok(RunsPage { runs, next })
}

async fn json(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<RunsPage>, JsonError> {
    Ok(Json(load(&state, &query).await?))
}

fn with_after(raw: &str, next: &str) -> String {
    let mut pairs: Vec<String> = raw
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("after="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("after={next}"));
    pairs.join("&")
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, DashboardError> {
    let data = load(&state, &query).await?;
    let flows = pgflow_db::inspect::list_flows(&state.pool).await?;
    let raw = raw.unwrap_or_default();
    let selected_flow = non_empty(&query.flow);
    let selected_status = non_empty(&query.status);
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "flow "
                select name="flow" {
                    option value="" { "all" }
                    @for f in &flows {
                        option value=(f.flow_slug) selected[selected_flow == Some(f.flow_slug.as_str())] { (f.flow_slug) }
                    }
                }
            }
            label { "status "
                select name="status" {
                    option value="" { "all" }
                    @for s in RUN_STATUSES {
                        option value=(s) selected[selected_status == Some(s)] { (s) }
                    }
                }
            }
            label { "since " input type="datetime-local" name="since" value=[non_empty(&query.since)]; }
            label { "until " input type="datetime-local" name="until" value=[non_empty(&query.until)]; }
            button type="submit" { "filter" }
            a href="/runs" { "clear" }
        }
        table.list #runs-table {
            thead { tr { th { "run" } th { "flow" } th { "status" } th { "steps" } th { "started (UTC)" } th { "duration" } } }
            tbody #runs-body {
                @for r in &data.runs {
                    tr data-run=(r.run_id) {
                        td { a.mono href=(format!("/runs/{}", r.run_id)) { (r.run_id) } }
                        td { a href=(format!("/flows/{}", r.flow_slug)) { (r.flow_slug) } }
                        td { (badge(&r.status)) }
                        td { (r.steps_done) "/" (r.steps_total) }
                        td { (views::time(&r.started_at)) }
                        td { (views::duration(r.duration_secs)) }
                    }
                }
            }
        }
        @if data.runs.is_empty() { p.muted #runs-empty { "No runs match." } }
        @if let Some(next) = &data.next {
            p { a.next href=(format!("/runs?{}", with_after(&raw, next))) { "older runs →" } }
        }
    };
    let meta = Page {
        title: "Runs",
        nav: "/runs",
        kind: "runs",
        source: Some(format!("/api/runs?{raw}")),
        run_filter: None,
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}
