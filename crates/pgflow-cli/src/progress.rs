//! Live run progress, shared by `pgflow run watch` and `pgflow demo`.
//!
//! On a terminal the block of per-step progress bars is redrawn in place
//! (cursor up + clear line); otherwise one plain line is printed per step
//! change, which reads well in logs and CI output.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

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

/// Draws snapshots either live (in place) or as plain change lines.
#[derive(Debug)]
pub struct Renderer {
    style: Style,
    live: bool,
    drawn_lines: usize,
    seen: HashMap<String, (StepStatus, i32)>,
    started: Instant,
}

const BAR_WIDTH: usize = 24;

impl Renderer {
    /// A renderer; `live` redraws in place (use only on a terminal).
    pub fn new(style: Style, live: bool) -> Self {
        Renderer {
            style,
            live,
            drawn_lines: 0,
            seen: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Shows `snap`: redraws the block, or prints lines for what changed.
    pub fn update(&mut self, snap: &Snapshot) {
        let mut out = std::io::stdout().lock();
        if self.live {
            let lines = frame(snap, self.style);
            if self.drawn_lines > 0 {
                // Move to the start of the block drawn last time.
                let _ = write!(out, "\x1b[{}F", self.drawn_lines);
            }
            for line in &lines {
                let _ = writeln!(out, "\x1b[2K{line}");
            }
            // A shorter frame (cannot happen today) must not leave stale lines.
            for _ in lines.len()..self.drawn_lines {
                let _ = writeln!(out, "\x1b[2K");
            }
            self.drawn_lines = self.drawn_lines.max(lines.len());
        } else {
            if self.seen.is_empty() {
                let _ = writeln!(
                    out,
                    "watching run {} of flow {} ({} steps)",
                    snap.run.run_id,
                    snap.run.flow_slug,
                    snap.steps.len()
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
        }
        let _ = out.flush();
    }

    /// Prints the closing summary line of a finished run.
    pub fn finish(&mut self, snap: &Snapshot) {
        let run = &snap.run;
        println!(
            "run {} {} in {}",
            run.run_id,
            self.style.status(run.status.as_str()),
            output::duration(run.duration_secs)
        );
    }
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

/// A fixed-width ASCII progress bar.
pub fn bar(step: &RunStep) -> String {
    let filled = match (step.status, step.tasks_total()) {
        (StepStatus::Completed, _) => BAR_WIDTH,
        (_, Some(total)) if total > 0 => {
            (step.tasks_done.max(0) as usize * BAR_WIDTH) / total as usize
        }
        _ => 0,
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

/// The lines of one live frame: a run header and one bar per step.
pub fn frame(snap: &Snapshot, style: Style) -> Vec<String> {
    let run = &snap.run;
    let done = snap
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Completed | StepStatus::Skipped))
        .count();
    let mut lines = vec![format!(
        "{} {}  {}  {}  {done}/{} steps",
        style.bold("run"),
        run.run_id,
        run.flow_slug,
        style.status(run.status.as_str()),
        snap.steps.len()
    )];
    let width = slug_width(snap);
    for step in &snap.steps {
        let bar = bar(step);
        let bar = match step.status {
            StepStatus::Completed => style.green(&bar),
            StepStatus::Failed => style.red(&bar),
            StepStatus::Started => style.cyan(&bar),
            _ => style.dim(&bar),
        };
        let status_pad = " ".repeat(9usize.saturating_sub(step.status.as_str().len()));
        let mut line = format!(
            "  {:<width$}  {bar}  {:>7}  {}{status_pad}",
            step.step_slug,
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
        lines.push(line);
    }
    lines
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
        tokio::time::sleep(interval).await;
    }
}

/// The exit code for a finished run: 0 completed, 1 failed, 2 cancelled.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Cancelled => 2,
        RunStatus::Failed | RunStatus::Started => 1,
    }
}
