//! One run: status, progress and the DAG coloured by step status first, then
//! the failing step's error, per-step timings as bars, input and output, and
//! its tasks a page at a time (a 10,000-task map costs one page), and the
//! LLM calls its steps made (tokens, cost, latency) where any were recorded.

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use maud::{html, Markup, PreEscaped};
use pgflow_db::api::{self as api, StepUsage};
use pgflow_db::dashboard::{
    self as q, RunOverview, RunStepRow, TaskDetail, TaskFilter, TaskListRow,
};
use serde::{Deserialize, Serialize};

use super::{non_empty, page_size, run_id, status_filter};
use crate::dag;
use crate::error::{DashboardError, JsonError};
use crate::routes::actions;
use crate::state::AppState;
use crate::views::{self, badge, expander, Page};

/// Characters of outputs, inputs and errors fetched per value.
pub const PREVIEW_CHARS: i32 = 2000;
/// Task statuses a filter may name.
pub const TASK_STATUSES: [&str; 5] = ["queued", "started", "completed", "failed", "cancelled"];
const DEFAULT_TASKS: i64 = 100;
const MAX_TASKS: i64 = 500;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}", get(page))
        .route("/api/runs/{id}", get(json))
        .route("/api/runs/{id}/tasks", get(tasks_json))
        .route("/api/runs/{id}/tasks/{step}/{index}", get(task_json))
}

/// Where a step's bar sits on the run's time line, in percent of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bar {
    /// From the run's start.
    pub offset_pct: f64,
    /// Length.
    pub width_pct: f64,
}

/// A step on the run page: its row plus its bar.
#[derive(Debug, Serialize)]
pub struct StepView {
    /// The step.
    #[serde(flatten)]
    pub step: RunStepRow,
    /// Its bar, once started.
    pub bar: Option<Bar>,
    /// The second line of its DAG node (task counts, time).
    pub detail: String,
}

/// The run page's JSON.
#[derive(Debug, Serialize)]
pub struct RunView {
    /// Header and progress.
    pub run: RunOverview,
    /// Steps in definition order.
    pub steps: Vec<StepView>,
    /// The step whose error explains the failure, if any.
    pub failing_step: Option<String>,
    /// Metered LLM calls per step (`pgflow.step_usage`); empty when none.
    pub usage: Vec<StepUsage>,
}

fn bar(run: &RunOverview, step: &RunStepRow) -> Option<Bar> {
    let started = step.started_at?;
    let total = run.duration_secs.max(0.001);
    let offset = (started - run.started_at).num_microseconds()? as f64 / 1e6;
    let offset_pct = (offset / total * 100.0).clamp(0.0, 100.0);
    let width_pct = (step.duration_secs.unwrap_or(0.0) / total * 100.0)
        .clamp(0.4, 100.0 - offset_pct.min(99.6));
    Some(Bar {
        offset_pct,
        width_pct,
    })
}

/// Loads the run with its steps; 404 when unknown.
pub async fn load(state: &AppState, id: uuid::Uuid) -> Result<RunView, DashboardError> {
    let run = q::run_overview(&state.pool, id, PREVIEW_CHARS)
        .await?
        .ok_or_else(|| DashboardError::NotFound(format!("no run {id}")))?;
    let steps = q::run_steps(&state.pool, id, PREVIEW_CHARS).await?;
    let failing_step = steps
        .iter()
        .find(|s| s.status == "failed")
        .or_else(|| steps.iter().find(|s| s.error_message.is_some()))
        .map(|s| s.step_slug.clone());
    let steps = steps
        .into_iter()
        .map(|step| StepView {
            bar: bar(&run, &step),
            detail: step_detail(&step),
            step,
        })
        .collect();
    let usage = api::step_usage(&state.pool, id).await?;
    Ok(RunView {
        run,
        steps,
        failing_step,
        usage,
    })
}

async fn json(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, JsonError> {
    Ok(Json(load(&state, run_id(&id)?).await?))
}

/// Query parameters of the task list.
#[derive(Debug, Default, Deserialize)]
pub struct TasksQuery {
    /// Only this step.
    pub step: Option<String>,
    /// Only this task status (`task_status` on the HTML page).
    #[serde(alias = "task_status")]
    pub status: Option<String>,
    /// Cursor `<step>:<index>` from `next`.
    pub after: Option<String>,
    /// Page size, 1 to 500.
    pub limit: Option<String>,
}

/// A page of tasks; `next` is the cursor of the following page, if any.
#[derive(Debug, Serialize)]
pub struct TasksPage {
    /// The tasks, by step and index.
    pub tasks: Vec<TaskListRow>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

fn task_filter(query: &TasksQuery) -> Result<TaskFilter, DashboardError> {
    let after = match non_empty(&query.after) {
        None => None,
        Some(text) => {
            let bad = || {
                DashboardError::BadRequest(format!(
                    "after: {text:?} is not a task cursor (step:index)"
                ))
            };
            let (step, index) = text.rsplit_once(':').ok_or_else(bad)?;
            Some((step.to_owned(), index.parse().map_err(|_| bad())?))
        }
    };
    Ok(TaskFilter {
        step_slug: non_empty(&query.step).map(str::to_owned),
        status: status_filter("task_status", &query.status, &TASK_STATUSES)?,
        after,
        limit: page_size(&query.limit, DEFAULT_TASKS, MAX_TASKS)?,
    })
}

async fn load_tasks(
    state: &AppState,
    id: uuid::Uuid,
    query: &TasksQuery,
) -> Result<TasksPage, DashboardError> {
    let filter = task_filter(query)?;
    let tasks = q::run_tasks(&state.pool, id, &filter, PREVIEW_CHARS).await?;
    let next = (tasks.len() as i64 == filter.limit)
        .then(|| {
            tasks
                .last()
                .map(|t| format!("{}:{}", t.step_slug, t.task_index))
        })
        .flatten();
    Ok(TasksPage { tasks, next })
}

async fn tasks_json(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TasksQuery>,
) -> Result<Json<TasksPage>, JsonError> {
    Ok(Json(load_tasks(&state, run_id(&id)?, &query).await?))
}

async fn task_json(
    State(state): State<AppState>,
    Path((id, step, index)): Path<(String, String, String)>,
) -> Result<Json<TaskDetail>, JsonError> {
    let id = run_id(&id)?;
    let index: i32 = index.parse().map_err(|_| {
        DashboardError::BadRequest(format!("task index: {index:?} is not a number"))
    })?;
    let task = q::task(&state.pool, id, &step, index)
        .await?
        .ok_or_else(|| DashboardError::NotFound(format!("no task {step}[{index}] in run {id}")))?;
    Ok(Json(task))
}

/// The condition of a step in words, for the DAG's tooltip.
pub(crate) fn condition(
    required: Option<&serde_json::Value>,
    forbidden: Option<&serde_json::Value>,
    when_unmet: &str,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(r) = required {
        parts.push(format!("if {r}"));
    }
    if let Some(f) = forbidden {
        parts.push(format!("if not {f}"));
    }
    (!parts.is_empty()).then(|| format!("{} (else {when_unmet})", parts.join(" and ")))
}

/// The second line of a step's DAG node.
pub fn step_detail(step: &RunStepRow) -> String {
    let tasks = match step.initial_tasks {
        Some(n) if step.step_type == "map" => format!("{}/{n} tasks", step.tasks_done),
        _ => step.status.clone(),
    };
    match step.duration_secs {
        Some(d) => format!("{tasks} · {}", views::duration(d)),
        None => tasks,
    }
}

fn dag_of(view: &RunView) -> Markup {
    let nodes: Vec<dag::Node> = view
        .steps
        .iter()
        .map(|s| dag::Node {
            slug: s.step.step_slug.clone(),
            deps: s.step.dependencies.clone(),
            is_map: s.step.step_type == "map",
            condition: condition(
                s.step.required_input_pattern.as_ref(),
                s.step.forbidden_input_pattern.as_ref(),
                &s.step.when_unmet,
            ),
            status: Some(s.step.status.clone()),
            detail: s.detail.clone(),
        })
        .collect();
    dag::svg(&nodes)
}

fn steps_table(view: &RunView) -> Markup {
    html! {
        table.list.steps #steps-table {
            thead { tr { th { "step" } th { "status" } th { "tasks" } th { "attempts" } th { "duration" } th.timeline { "timeline" } } }
            tbody {
                @for s in &view.steps {
                    @let st = &s.step;
                    tr data-step=(st.step_slug) {
                        td { (st.step_slug) @if st.step_type == "map" { " " span.tag { "map" } } }
                        td.status { (badge(&st.status)) @if let Some(r) = &st.skip_reason { " " span.muted { (r) } } }
                        td.tasks { (st.tasks_done) "/" (st.initial_tasks.map_or("?".to_owned(), |n| n.to_string())) }
                        td.attempts { (st.attempts) }
                        td.duration { (st.duration_secs.map(views::duration).unwrap_or_default()) }
                        td.timeline {
                            div.track {
                                @if let Some(b) = s.bar {
                                    div class=(format!("bar status-{}", st.status))
                                        style=(PreEscaped(format!("left:{:.2}%;width:{:.2}%", b.offset_pct, b.width_pct))) {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// LLM usage per step, with a total row. Costs are blank where a model has
/// no price in `pgflow.model_prices`.
fn usage_table(usage: &[StepUsage]) -> Markup {
    let cost = |c: Option<f64>| c.map(|c| format!("${c:.6}")).unwrap_or_default();
    let total_cost = usage
        .iter()
        .try_fold(0.0, |sum, u| u.cost_usd.map(|c| sum + c));
    html! {
        h2 #usage { "LLM usage" }
        table.list.usage #usage-table {
            thead { tr { th { "step" } th { "calls" } th { "input tokens" } th { "output tokens" } th { "cost" } th { "latency" } th { "models" } } }
            tbody {
                @for u in usage {
                    tr data-step=(u.step_slug) {
                        td { (u.step_slug) }
                        td.calls { (u.calls) @if u.abandoned_calls > 0 { " " span.muted { "(" (u.abandoned_calls) " abandoned)" } } }
                        td.input-tokens { (u.input_tokens) }
                        td.output-tokens { (u.output_tokens) }
                        td.cost { (cost(u.cost_usd)) }
                        td { (views::duration(u.latency_ms as f64 / 1000.0)) }
                        td { (u.models.join(", ")) }
                    }
                }
                tr.total {
                    td { "total" }
                    td { (usage.iter().map(|u| u.calls).sum::<i64>()) }
                    td { (usage.iter().map(|u| u.input_tokens).sum::<i64>()) }
                    td { (usage.iter().map(|u| u.output_tokens).sum::<i64>()) }
                    td.cost { (cost(total_cost)) }
                    td { (views::duration(usage.iter().map(|u| u.latency_ms).sum::<i64>() as f64 / 1000.0)) }
                    td {}
                }
            }
        }
    }
}

fn tasks_table(
    id: uuid::Uuid,
    page: &TasksPage,
    raw: &str,
    steps: &[StepView],
    query: &TasksQuery,
) -> Markup {
    let step = non_empty(&query.step);
    let status = non_empty(&query.status);
    let next_href = page.next.as_ref().map(|next| {
        let mut pairs: Vec<&str> = raw
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after="))
            .collect();
        let after = format!("after={next}");
        pairs.push(&after);
        format!("/runs/{id}?{}#tasks", pairs.join("&"))
    });
    html! {
        h2 #tasks { "Tasks " span.muted.small { "(as of page load; the steps above are live)" } }
        form.filters method="get" action=(format!("/runs/{id}")) {
            label { "step "
                select name="step" {
                    option value="" { "all" }
                    @for s in steps {
                        option value=(s.step.step_slug) selected[step == Some(s.step.step_slug.as_str())] { (s.step.step_slug) }
                    }
                }
            }
            label { "status "
                select name="task_status" {
                    option value="" { "all" }
                    @for s in TASK_STATUSES { option value=(s) selected[status == Some(s)] { (s) } }
                }
            }
            button type="submit" { "filter" }
        }
        table.list.tasks {
            thead { tr { th { "step" } th { "#" } th { "status" } th { "attempts" } th { "worker" } th { "duration" } th { "error" } th { "output" } } }
            tbody {
                @for t in &page.tasks {
                    @let full = format!("/api/runs/{id}/tasks/{}/{}", t.step_slug, t.task_index);
                    tr {
                        td { (t.step_slug) }
                        td { (t.task_index) }
                        td { (badge(&t.status)) }
                        td { (t.attempts_count) }
                        td.mono { (t.last_worker_id.map(|w| w.to_string()[..8].to_owned()).unwrap_or_default()) }
                        td { (t.duration_secs.map(views::duration).unwrap_or_default()) }
                        td.error-cell { (expander(t.error_preview.as_deref(), t.error_len, Some(&full))) }
                        td { (expander(t.output_preview.as_deref(), t.output_len, Some(&full))) }
                    }
                }
            }
        }
        @if page.tasks.is_empty() { p.muted { "No tasks match." } }
        @if let Some(href) = next_href { p { a.next href=(href) { "more tasks →" } } }
    }
}

async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TasksQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, DashboardError> {
    let id = run_id(&id)?;
    let view = load(&state, id).await?;
    let tasks = load_tasks(&state, id, &query).await?;
    let run = &view.run;
    let failing = view
        .failing_step
        .as_ref()
        .and_then(|slug| view.steps.iter().find(|s| &s.step.step_slug == slug));
    let body = html! {
        div.run-head {
            h1 { "Run " span.mono { (run.run_id) } }
            div.facts {
                (badge(&run.status)) " "
                "flow " a href=(format!("/flows/{}", run.flow_slug)) { (run.flow_slug) }
                " · started " (views::time(&run.started_at))
                " · " span #run-duration { (views::duration(run.duration_secs)) }
                " · " span #run-counts { (run.steps_done) "/" (run.steps_total) " steps, " (run.tasks_done) "/" (run.tasks_planned) " tasks" }
            }
            (views::progress(run.percent))
            (actions::run_buttons(&state, run))
        }
        section.dag-box { (dag_of(&view)) }
        @if let Some(f) = failing {
            section.failure #failure {
                h2 { "Step " code { (f.step.step_slug) } " " (f.step.status) }
                pre.error-text { (f.step.error_message.as_deref().unwrap_or("(no message)")) }
            }
        }
        h2 { "Steps" }
        (steps_table(&view))
        @if !view.usage.is_empty() { (usage_table(&view.usage)) }
        div.io {
            div { h3 { "Input" } (expander(Some(&run.input_preview), Some(run.input_len), None)) }
            div { h3 { "Output" } (expander(run.output_preview.as_deref(), run.output_len, None)) }
        }
        (tasks_table(id, &tasks, raw.as_deref().unwrap_or(""), &view.steps, &query))
    };
    let meta = Page {
        title: &format!("Run {}", &run.run_id.to_string()[..8]),
        nav: "/runs",
        kind: "run",
        source: Some(format!("/api/runs/{id}")),
        run_filter: Some(id.to_string()),
    };
    Ok(Html(views::page(&state, meta, body).into_string()))
}
