//! Flows: the list with options and run counts; one flow with its DAG drawn
//! from its stored steps, its steps' options and conditions, and (with
//! actions allowed) a form to start a run.

use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use maud::html;
use pgflow_db::inspect::{self, FlowStep, FlowSummary};
use serde::Serialize;

use crate::dag;
use crate::error::{DashboardError, JsonError};
use crate::routes::{actions, run::condition};
use crate::state::AppState;
use crate::views::{self, Page};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/flows", get(list_page))
        .route("/api/flows", get(list_json))
        .route("/flows/{slug}", get(flow_page))
        .route("/api/flows/{slug}", get(flow_json))
}

/// One flow's JSON: options, run counts and steps.
#[derive(Debug, Serialize)]
pub struct FlowView {
    /// Options and run counts.
    pub flow: FlowSummary,
    /// Steps in definition order.
    pub steps: Vec<FlowStep>,
}

async fn list_json(State(state): State<AppState>) -> Result<Json<Vec<FlowSummary>>, JsonError> {
    Ok(Json(inspect::list_flows(&state.pool).await?))
}

async fn load(state: &AppState, slug: &str) -> Result<FlowView, DashboardError> {
    let flow = inspect::get_flow(&state.pool, slug)
        .await?
        .ok_or_else(|| DashboardError::NotFound(format!("no flow {slug:?}")))?;
    let steps = inspect::flow_steps(&state.pool, slug).await?;
    Ok(FlowView { flow, steps })
}

async fn flow_json(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<FlowView>, JsonError> {
    Ok(Json(load(&state, &slug).await?))
}

fn opt(value: Option<i32>, unit: &str) -> String {
    value.map_or("flow default".to_owned(), |v| format!("{v}{unit}"))
}

/// The DAG of a flow definition (no statuses).
pub fn flow_dag(steps: &[FlowStep]) -> maud::Markup {
    let nodes: Vec<dag::Node> = steps
        .iter()
        .map(|s| dag::Node {
            slug: s.step_slug.clone(),
            deps: s.dependencies.clone(),
            is_map: s.step_type == "map",
            condition: condition(
                s.required_input_pattern.as_ref(),
                s.forbidden_input_pattern.as_ref(),
                &s.when_unmet,
            ),
            status: None,
            detail: if s.step_type == "map" {
                "one task per element".into()
            } else {
                "single".into()
            },
        })
        .collect();
    dag::svg(&nodes)
}

async fn list_page(State(state): State<AppState>) -> Result<Html<String>, DashboardError> {
    let flows = inspect::list_flows(&state.pool).await?;
    let body = html! {
        h1 { "Flows" }
        table.list #flows-table {
            thead { tr { th { "flow" } th { "steps" } th { "max attempts" } th { "base delay" } th { "timeout" }
                th { "started" } th { "completed" } th { "failed" } th { "cancelled" } } }
            tbody {
                @for f in &flows {
                    tr data-flow=(f.flow_slug) {
                        td { a href=(format!("/flows/{}", f.flow_slug)) { (f.flow_slug) } }
                        td { (f.step_count) }
                        td { (f.opt_max_attempts) }
                        td { (f.opt_base_delay) " s" }
                        td { (f.opt_timeout) " s" }
                        td { a href=(format!("/runs?flow={}&status=started", f.flow_slug)) { (f.runs_started) } }
                        td { a href=(format!("/runs?flow={}&status=completed", f.flow_slug)) { (f.runs_completed) } }
                        td { a href=(format!("/runs?flow={}&status=failed", f.flow_slug)) { (f.runs_failed) } }
                        td { a href=(format!("/runs?flow={}&status=cancelled", f.flow_slug)) { (f.runs_cancelled) } }
                    }
                }
            }
        }
        @if flows.is_empty() { p.muted { "No flows yet: register one with " code { "pgflow flow add FILE" } " or start a worker." } }
    };
    let meta = Page {
        title: "Flows",
        nav: "/flows",
        kind: "flows",
        source: None,
        run_filter: None,
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}

async fn flow_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Html<String>, DashboardError> {
    let view = load(&state, &slug).await?;
    let f = &view.flow;
    let body = html! {
        h1 { "Flow " code { (f.flow_slug) } }
        p.facts {
            "max attempts " (f.opt_max_attempts) " · base delay " (f.opt_base_delay) " s · timeout " (f.opt_timeout) " s · created " (views::time(&f.created_at))
        }
        p.facts {
            "runs: "
            a href=(format!("/runs?flow={}&status=started", f.flow_slug)) { (f.runs_started) " started" } " · "
            a href=(format!("/runs?flow={}&status=completed", f.flow_slug)) { (f.runs_completed) " completed" } " · "
            a href=(format!("/runs?flow={}&status=failed", f.flow_slug)) { (f.runs_failed) " failed" } " · "
            a href=(format!("/runs?flow={}&status=cancelled", f.flow_slug)) { (f.runs_cancelled) " cancelled" }
        }
        section.dag-box { (flow_dag(&view.steps)) }
        h2 { "Steps" }
        table.list {
            thead { tr { th { "#" } th { "step" } th { "type" } th { "depends on" } th { "max attempts" } th { "base delay" }
                th { "timeout" } th { "start delay" } th { "condition" } th { "when exhausted" } } }
            tbody {
                @for s in &view.steps {
                    tr {
                        td { (s.step_index) }
                        td { code { (s.step_slug) } }
                        td { (s.step_type) }
                        td { (s.dependencies.join(", ")) }
                        td { (opt(s.opt_max_attempts, "")) }
                        td { (opt(s.opt_base_delay, " s")) }
                        td { (opt(s.opt_timeout, " s")) }
                        td { (opt(s.opt_start_delay, " s")) }
                        td { (condition(s.required_input_pattern.as_ref(), s.forbidden_input_pattern.as_ref(), &s.when_unmet).unwrap_or_default()) }
                        td { (s.when_exhausted) }
                    }
                }
            }
        }
        (actions::start_form(&state, &f.flow_slug))
    };
    let meta = Page {
        title: &format!("Flow {}", f.flow_slug),
        nav: "/flows",
        kind: "flow",
        source: None,
        run_filter: None,
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}
