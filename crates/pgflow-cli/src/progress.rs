//! Live run progress, shared by `pgflow run watch` and `pgflow demo`.
//!
//! On a terminal the per-step progress bars are redrawn in place by
//! `indicatif`; otherwise one plain line is printed per step change, which
//! reads well in logs and CI output.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use pgflow_db::inspect::{self, RunDetail, RunStep};
use pgflow_db::status::{RunStatus, StepStatus};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::context::db_error;
use crate::output::{self, Style};

/// A run and its steps at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The run.
    pub run: RunDetail,
    /// Its steps in definition order.
    pub steps: Vec<RunStep>,
}

/// Reads a run and its steps; `None` for an unknown run.
pub async fn fetch(pool: &PgPool, run_id: Uuid) -> anyhow::Result<Option<Snapshot>> {
    let Some(run) = inspect::get_run(pool, run_id).await.map_err(db_error)? else {
        return Ok(None);
    };
    let steps = inspect::run_steps(pool, run_id).await.map_err(db_error)?;
    Ok(Some(Snapshot { run, steps }))
}

/// The error for a run id that does not exist.
pub fn unknown_run(run_id: Uuid) -> anyhow::Error {
    anyhow::anyhow!("unknown run {run_id}: no such run in this database (see `pgflow run list`)")
}

/// Draws snapshots either live (progress bars redrawn in place by
/// `indicatif`) or as plain change lines.
#[derive(Debug)]
pub struct Renderer {
    style: Style,
    live: Option<LiveBars>,
    seen: HashMap<String, (StepStatus, i32)>,
    started: Instant,
}

/// The live view: a header line and one bar per step.
#[derive(Debug)]
struct LiveBars {
    bars: MultiProgress,
    header: ProgressBar,
    steps: Vec<ProgressBar>,
}

const BAR_WIDTH: usize = 24;

impl Renderer {
    /// A renderer; `live` redraws in place (use only on a terminal).
    pub fn new(style: Style, live: bool) -> Self {
        let live = live.then(|| {
            let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let header = bars.add(
                ProgressBar::new(0)
                    .with_style(ProgressStyle::with_template("{msg}").expect("a valid template")),
            );
            LiveBars {
                bars,
                header,
                steps: Vec::new(),
            }
        });
        Renderer {
            style,
            live,
            seen: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Shows `snap`: updates the bars, or prints lines for what changed.
    pub fn update(&mut self, snap: &Snapshot) {
        match &mut self.live {
            Some(live) => live.update(snap, self.style),
            None => self.print_changes(snap),
        }
    }

    fn print_changes(&mut self, snap: &Snapshot) {
        let mut out = std::io::stdout().lock();
        if self.seen.is_empty() {
            let _ = writeln!(
                out,
                "watching run {} of flow {} ({})",
                snap.run.run_id,
                snap.run.flow_slug,
                output::plural(snap.steps.len(), "step")
            );
        }
        let width = slug_width(snap);
        for step in &snap.steps {
            let key = (step.status, step.tasks_done);
            if self.seen.get(&step.step_slug) == Some(&key) {
                continue;
            }
            self.seen.insert(step.step_slug.clone(), key);
            let _ = writeln!(
                out,
                "{:>8}  {:<width$}  {:<9}  {}{}",
                output::duration(self.started.elapsed().as_secs_f64()),
                step.step_slug,
                step.status,
                tasks_text(step),
                step.error_message
                    .as_deref()
                    .map(|e| format!("  error: {}", output::truncate(e, 100)))
                    .unwrap_or_default(),
            );
        }
        let _ = out.flush();
    }

    /// Prints the closing summary line of a finished run.
    pub fn finish(&mut self, snap: &Snapshot) {
        if let Some(live) = &self.live {
            // Leave the last frame on screen above the summary.
            live.header.finish();
            live.steps.iter().for_each(ProgressBar::finish);
        }
        let run = &snap.run;
        println!(
            "run {} {} in {}",
            run.run_id,
            self.style.status(run.status.as_str()),
            output::duration(run.duration_secs)
        );
    }
}

impl LiveBars {
    fn update(&mut self, snap: &Snapshot, style: Style) {
        let run = &snap.run;
        let done = snap
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Completed | StepStatus::Skipped))
            .count();
        self.header.set_message(format!(
            "{} {}  {}  {}  {done}/{} steps",
            style.bold("run"),
            run.run_id,
            run.flow_slug,
            style.status(run.status.as_str()),
            snap.steps.len()
        ));
        while self.steps.len() < snap.steps.len() {
            self.steps.push(self.bars.add(ProgressBar::new(0)));
        }
        let width = slug_width(snap);
        for (bar, step) in self.steps.iter().zip(&snap.steps) {
            bar.set_style(bar_style(step.status, style));
            let total = step.tasks_total().unwrap_or(0).max(0) as u64;
            if step.status == StepStatus::Completed {
                // A completed step shows a full bar, even a map of 0 tasks.
                bar.set_length(total.max(1));
                bar.set_position(total.max(1));
            } else {
                bar.set_length(total);
                bar.set_position(step.tasks_done.max(0) as u64);
            }
            bar.set_prefix(format!("{:<width$}", step.step_slug));
            bar.set_message(step_details(step, style));
        }
    }
}

/// The bar of one step, coloured by its status.
fn bar_style(status: StepStatus, style: Style) -> ProgressStyle {
    let colour = match (style.color, status) {
        (false, _) => "",
        (true, StepStatus::Completed) => ".green",
        (true, StepStatus::Failed) => ".red",
        (true, StepStatus::Started) => ".cyan",
        (true, _) => ".dim",
    };
    ProgressStyle::with_template(&format!(
        "  {{prefix}}  [{{bar:{BAR_WIDTH}{colour}}}]  {{msg}}"
    ))
    .expect("a valid template")
    .progress_chars("#-")
}

/// What follows a step's bar: tasks, status, duration, attempts, error.
fn step_details(step: &RunStep, style: Style) -> String {
    let status_pad = " ".repeat(9usize.saturating_sub(step.status.as_str().len()));
    let mut line = format!(
        "{:>7}  {}{status_pad}",
        tasks_text(step),
        style.status(step.status.as_str()),
    );
    if let Some(secs) = step.duration_secs {
        line.push_str(&format!("  {:>6}", output::duration(secs)));
    }
    if step.attempts > 1 {
        line.push_str(&format!("  attempts {}", step.attempts));
    }
    if let Some(err) = &step.error_message {
        line.push_str(&format!("  {}", style.red(&output::truncate(err, 60))));
    }
    line
}

fn slug_width(snap: &Snapshot) -> usize {
    snap.steps
        .iter()
        .map(|s| s.step_slug.chars().count())
        .max()
        .unwrap_or(4)
        .max(4)
}

/// `done/total`, with `?` while a map's size is unknown.
pub fn tasks_text(step: &RunStep) -> String {
    match step.tasks_total() {
        Some(total) => format!("{}/{}", step.tasks_done, total),
        None => format!("{}/?", step.tasks_done),
    }
}

/// Polls the run every `interval`, drawing progress (unless `quiet`), until
/// it is completed, failed or cancelled; returns the final snapshot.
pub async fn watch(
    pool: &PgPool,
    run_id: Uuid,
    renderer: Option<&mut Renderer>,
    interval: Duration,
) -> anyhow::Result<Snapshot> {
    let mut renderer = renderer;
    // Woken by `pgflow_events` rather than polling: a run's events name its
    // id. Where LISTEN is refused, poll every `interval` instead.
    let mut listener = match pgflow_db::dashboard::listen_events(pool).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            eprintln!(
                "note: cannot LISTEN on pgflow_events ({e}); polling every {}",
                humantime::format_duration(interval)
            );
            None
        }
    };
    loop {
        let snap = fetch(pool, run_id)
            .await?
            .ok_or_else(|| unknown_run(run_id))?;
        if let Some(r) = renderer.as_deref_mut() {
            r.update(&snap);
        }
        if snap.run.is_terminal() {
            if let Some(r) = renderer.as_deref_mut() {
                r.finish(&snap);
            }
            return Ok(snap);
        }
        match listener.as_mut() {
            // A pooler in transaction mode accepts LISTEN but delivers
            // nothing: re-read at least every few seconds regardless.
            Some(l) => next_event_of(l, run_id, interval.max(SAFETY_REREAD)).await,
            None => tokio::time::sleep(interval).await,
        }
    }
}

/// How often `watch` re-reads a run with no event about it.
const SAFETY_REREAD: Duration = Duration::from_secs(2);

/// Waits (at most `limit`) for an event about `run_id`, then takes every
/// event already buffered, so a burst of events costs one re-read.
async fn next_event_of(listener: &mut sqlx::postgres::PgListener, run_id: Uuid, limit: Duration) {
    let needle = run_id.to_string();
    let about_run = async {
        loop {
            match listener.recv().await {
                Ok(event) if event.payload().contains(&needle) => return,
                Ok(_) => {}
                // The connection dropped and could not be re-established
                // yet: the re-read below tells the truth meanwhile.
                Err(_) => {
                    tokio::time::sleep(SAFETY_REREAD).await;
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(limit, about_run).await;
    while listener.next_buffered().is_some() {}
}

/// The exit code for a finished run: 0 completed, 1 failed, 2 cancelled.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Cancelled => 2,
        RunStatus::Failed | RunStatus::Started => 1,
    }
}
