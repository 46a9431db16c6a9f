//! `pgflow run start|list|show|watch|cancel|retry`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use pgflow_db::status::{RunStatus, StepStatus};
use pgflow_db::{api, inspect};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::db_error;
use crate::output::{self, print_json, timestamp, Table};
use crate::progress::{self, Renderer, Snapshot};
use crate::Context;

/// `--status`: one of the run statuses, as the database spells them.
fn run_status_parser() -> impl clap::builder::TypedValueParser<Value = RunStatus> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(RunStatus::ALL.iter().map(|s| s.as_str()))
        .try_map(|s| s.parse::<RunStatus>())
}

/// Arguments of `pgflow run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RunCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RunCommand {
    /// Start a run of a flow and print its run id.
    Start {
        /// The flow slug.
        slug: String,
        /// The run input: JSON text, or @FILE to read it from a file (@- for stdin).
        #[arg(long, default_value = "{}")]
        input: String,
        /// Then watch it like `pgflow run watch` (and exit with its code).
        #[arg(long)]
        watch: bool,
    },
    /// List the most recent runs.
    List {
        /// Only runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only runs with this status.
        #[arg(long, value_parser = run_status_parser())]
        status: Option<RunStatus>,
        /// At most this many runs (1 or more).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Show a run: per step status, tasks done/total, attempts, duration, error.
    Show {
        /// The run id.
        run_id: Uuid,
    },
    /// Show live progress until the run ends; exit 0 completed, 1 failed, 2 cancelled.
    Watch {
        /// The run id.
        run_id: Uuid,
        #[command(flatten)]
        opts: WatchOpts,
    },
    /// Cancel a started run (its queued and running tasks are dropped).
    Cancel {
        /// The run id.
        run_id: Uuid,
    },
    /// Resume a failed run where it failed.
    Retry {
        /// The run id.
        run_id: Uuid,
    },
}

/// How `watch` polls.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchOpts {
    /// Milliseconds between re-reads when LISTEN is not available. With
    /// LISTEN (the usual case) the run is re-read on each of its events on
    /// `pgflow_events`, and at least every max(this, 2 s) in case events
    /// are lost (e.g. through a transaction-mode pooler).
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
}

/// Runs a `pgflow run` subcommand.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        RunCommand::Start { slug, input, watch } => start(ctx, &slug, &input, watch).await,
        RunCommand::List {
            flow,
            status,
            limit,
        } => list(ctx, flow.as_deref(), status, limit).await,
        RunCommand::Show { run_id } => show(ctx, run_id).await,
        RunCommand::Watch { run_id, opts } => watch(ctx, run_id, &opts).await,
        RunCommand::Cancel { run_id } => cancel_or_retry(ctx, run_id, true).await,
        RunCommand::Retry { run_id } => cancel_or_retry(ctx, run_id, false).await,
    }
}

/// Reads `--input`: JSON text, `@file` or `@-` (stdin).
fn read_input(input: &str) -> anyhow::Result<Value> {
    let (text, origin) = match input.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the input from stdin")?;
            (text, "stdin".to_string())
        }
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the input file {path}"))?,
            path.to_string(),
        ),
        None => (input.to_string(), "--input".to_string()),
    };
    serde_json::from_str(&text).with_context(|| format!("{origin} is not valid JSON"))
}

async fn start(
    ctx: &Context,
    slug: &str,
    input: &str,
    then_watch: bool,
) -> anyhow::Result<ExitCode> {
    let input = read_input(input)?;
    let pool = ctx.pool().await?;
    // start_flow's own error for a missing flow is a constraint message;
    // checking first gives a clearer one.
    if inspect::get_flow(&pool, slug)
        .await
        .map_err(db_error)?
        .is_none()
    {
        bail!("unknown flow {slug:?}: no such flow in this database (see `pgflow flow list`, or register it with `pgflow flow add FILE`)");
    }
    let run = api::start_flow(&pool, slug, &input, None)
        .await
        .map_err(|e| match e.db_message() {
            Some(msg) => anyhow::anyhow!("cannot start flow {slug:?}: {msg}"),
            None => db_error(e),
        })?;
    if then_watch {
        if !ctx.json {
            println!("{}", run.run_id);
        }
        // `watch` gives the warning when no worker serves the flow.
        return watch(ctx, run.run_id, &WatchOpts { interval_ms: 500 }).await;
    }
    warn_if_unserved(&pool, slug).await?;
    if ctx.json {
        print_json(&json!({
            "run_id": run.run_id,
            "flow_slug": run.flow_slug,
            "status": run.status,
        }))?;
    } else {
        // Only the id, so `id=$(pgflow run start ...)` works.
        println!("{}", run.run_id);
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(
    ctx: &Context,
    flow: Option<&str>,
    status: Option<RunStatus>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let runs = inspect::list_runs(&pool, flow, status, limit.max(0))
        .await
        .map_err(db_error)?;
    if ctx.json {
        print_json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs");
        return Ok(ExitCode::SUCCESS);
    }
    let s = ctx.style;
    let mut table = Table::new([
        "RUN", "FLOW", "STATUS", "STEPS", "TASKS", "STARTED", "DURATION",
    ]);
    for r in &runs {
        table.row(vec![
            r.run_id.to_string(),
            r.flow_slug.clone(),
            s.status(r.status.as_str()),
            format!("{}/{}", r.steps_done, r.steps_total),
            format!("{}/{}", r.tasks_done, r.tasks_total),
            timestamp(&r.started_at),
            output::duration(r.duration_secs),
        ]);
    }
    table.print(s);
    Ok(ExitCode::SUCCESS)
}

/// Prints a snapshot as the `run show` text.
pub fn print_snapshot(ctx: &Context, snap: &Snapshot) {
    let s = ctx.style;
    let run = &snap.run;
    println!("{} {}", s.bold("run"), run.run_id);
    println!("  flow:     {}", run.flow_slug);
    println!("  status:   {}", s.status(run.status.as_str()));
    println!("  started:  {}", timestamp(&run.started_at));
    if let Some(at) = &run.finished_at {
        println!("  finished: {}", timestamp(at));
    }
    println!("  duration: {}", output::duration(run.duration_secs));
    println!(
        "  input:    {}",
        output::truncate(&run.input.to_string(), 200)
    );
    if let Some(out) = &run.output {
        println!("  output:   {}", output::truncate(&out.to_string(), 200));
    }
    println!();
    let mut table = Table::new([
        "STEP", "TYPE", "STATUS", "TASKS", "ATTEMPTS", "DURATION", "ERROR",
    ]);
    for st in &snap.steps {
        let error = match (&st.error_message, &st.skip_reason) {
            (Some(e), _) => s.red(&output::truncate(e, 80)),
            (None, Some(reason)) => format!("skipped: {reason}"),
            _ => String::new(),
        };
        table.row(vec![
            st.step_slug.clone(),
            st.step_type.clone(),
            s.status(st.status.as_str()),
            progress::tasks_text(st),
            st.attempts.to_string(),
            st.duration_secs
                .map(output::duration)
                .unwrap_or_else(|| "-".into()),
            error,
        ]);
    }
    table.print(s);
}

/// A worker whose heartbeat is older than this is not counted as serving a
/// queue (the same default as `pgflow workers --stale-after`).
const LIVE_WITHIN_SECS: f64 = 30.0;

/// The warning for a flow no live worker serves, or `None` when one does.
pub async fn unserved_warning(
    pool: &sqlx::PgPool,
    flow_slug: &str,
) -> anyhow::Result<Option<String>> {
    let live = inspect::live_workers(pool, flow_slug, LIVE_WITHIN_SECS)
        .await
        .map_err(db_error)?;
    Ok((live == 0).then(|| {
        format!(
            "warning: no live worker serves flow {flow_slug:?} (none has polled its queue in the \
             last {LIVE_WITHIN_SECS:.0} s), so its runs wait, unchanged, until one starts.\n\
             hint: start a worker process that serves {flow_slug:?} against this database (a \
             program using `pgflow::Worker`; see \"Use it in your own Cargo project\" in the \
             README); `pgflow workers` lists the workers this database has seen"
        )
    }))
}

/// Prints [`unserved_warning`] on stderr (stdout stays the result alone).
async fn warn_if_unserved(pool: &sqlx::PgPool, flow_slug: &str) -> anyhow::Result<()> {
    if let Some(warning) = unserved_warning(pool, flow_slug).await? {
        eprintln!("{warning}");
    }
    Ok(())
}

async fn show(ctx: &Context, run_id: Uuid) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let snap = progress::fetch(&pool, run_id)
        .await?
        .ok_or_else(|| progress::unknown_run(run_id))?;
    if !snap.run.is_terminal() {
        warn_if_unserved(&pool, &snap.run.flow_slug).await?;
    }
    let usage = api::step_usage(&pool, run_id).await.map_err(db_error)?;
    if ctx.json {
        let mut value = serde_json::to_value(&snap)?;
        value["usage"] = json!({"steps": usage, "total": usage_total(&usage)});
        print_json(&value)?;
    } else {
        print_snapshot(ctx, &snap);
        print_usage(ctx, &usage);
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's usage summed over its steps (cost `null` when no call was priced).
fn usage_total(steps: &[api::StepUsage]) -> Value {
    let priced: Vec<f64> = steps.iter().filter_map(|u| u.cost_usd).collect();
    json!({
        "calls": steps.iter().map(|u| u.calls).sum::<i64>(),
        "abandoned_calls": steps.iter().map(|u| u.abandoned_calls).sum::<i64>(),
        "input_tokens": steps.iter().map(|u| u.input_tokens).sum::<i64>(),
        "output_tokens": steps.iter().map(|u| u.output_tokens).sum::<i64>(),
        "cost_usd": (!priced.is_empty()).then(|| priced.iter().sum::<f64>()),
        "latency_ms": steps.iter().map(|u| u.latency_ms).sum::<i64>(),
    })
}

/// Tokens, cost and latency of metered calls (LLM steps), per step.
fn print_usage(ctx: &Context, steps: &[api::StepUsage]) {
    if steps.is_empty() {
        return;
    }
    let cost = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |c| format!("${c:.6}"));
    println!();
    println!("{}", ctx.style.bold("usage"));
    let mut table = Table::new([
        "STEP",
        "CALLS",
        "INPUT TOKENS",
        "OUTPUT TOKENS",
        "COST",
        "LATENCY",
        "MODELS",
    ]);
    for u in steps {
        let calls = if u.abandoned_calls > 0 {
            format!("{} ({} abandoned)", u.calls, u.abandoned_calls)
        } else {
            u.calls.to_string()
        };
        table.row(vec![
            u.step_slug.clone(),
            calls,
            u.input_tokens.to_string(),
            u.output_tokens.to_string(),
            cost(u.cost_usd),
            output::duration(u.latency_ms as f64 / 1000.0),
            u.models.join(", "),
        ]);
    }
    let total = usage_total(steps);
    table.row(vec![
        "total".into(),
        total["calls"].to_string(),
        total["input_tokens"].to_string(),
        total["output_tokens"].to_string(),
        cost(total["cost_usd"].as_f64()),
        output::duration(total["latency_ms"].as_f64().unwrap_or(0.0) / 1000.0),
        String::new(),
    ]);
    table.print(ctx.style);
}

async fn watch(ctx: &Context, run_id: Uuid, opts: &WatchOpts) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let interval = Duration::from_millis(opts.interval_ms.max(50));
    // Listen for Ctrl-C before saying anything, so a user (or a test) who
    // reacts to the first line is already heard.
    let interrupted = interrupt_listener()?;
    let first = progress::fetch(&pool, run_id)
        .await?
        .ok_or_else(|| progress::unknown_run(run_id))?;
    if !first.run.is_terminal() {
        warn_if_unserved(&pool, &first.run.flow_slug).await?;
    }
    let mut renderer = Renderer::new(ctx.style, ctx.stdout_is_terminal);
    let watching = progress::watch(
        &pool,
        run_id,
        (!ctx.json).then_some(&mut renderer),
        interval,
    );
    // Ctrl-C stops the watching, not the run: say so, and how to come back.
    let snap = tokio::select! {
        snap = watching => snap?,
        _ = interrupted => {
            eprintln!("{}", detached_message(run_id));
            return Ok(ExitCode::from(130));
        }
    };
    if ctx.json {
        print_json(&snap)?;
    } else if let Some(out) = &snap.run.output {
        println!("output: {}", output::truncate(&out.to_string(), 500));
    } else if snap.run.status == RunStatus::Failed {
        for st in snap.steps.iter().filter(|s| s.status == StepStatus::Failed) {
            println!(
                "step {} failed: {}",
                st.step_slug,
                st.error_message.as_deref().unwrap_or("(no message)")
            );
        }
    }
    Ok(ExitCode::from(progress::exit_code(snap.run.status)))
}

/// A future that resolves on SIGINT (Ctrl-C). On Unix the handler is in
/// place when this returns, not only once the future is first polled.
fn interrupt_listener() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        Ok(async move {
            sigint.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// What `run watch` says when interrupted: the run goes on without it.
pub fn detached_message(run_id: Uuid) -> String {
    format!(
        "\nstopped watching; run {run_id} continues in the database.\n\
         hint: reattach with `pgflow run watch {run_id}`, or cancel it with `pgflow run cancel {run_id}`"
    )
}

async fn cancel_or_retry(ctx: &Context, run_id: Uuid, cancel: bool) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let (verb, done) = if cancel {
        (
            "cancel",
            api::cancel_run(&pool, run_id).await.map_err(db_error)?,
        )
    } else {
        (
            "retry",
            api::retry_run(&pool, run_id).await.map_err(db_error)?,
        )
    };
    let run = inspect::get_run(&pool, run_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| progress::unknown_run(run_id))?;
    if ctx.json {
        let mut report = json!({"run_id": run_id, "status": run.status});
        report[if cancel { "cancelled" } else { "retried" }] = json!(done);
        print_json(&report)?;
    }
    if !done {
        let why = if cancel {
            "only a started run can be cancelled"
        } else {
            "only a failed run can be retried"
        };
        bail!(
            "cannot {verb} run {run_id}: its status is {} ({why})",
            run.status
        );
    }
    if !ctx.json {
        if cancel {
            println!("run {run_id} cancelled");
        } else {
            println!(
                "run {run_id} resumed (status {}); watch it with `pgflow run watch {run_id}`",
                run.status
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
