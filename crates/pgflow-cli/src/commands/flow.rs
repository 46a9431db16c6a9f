//! `pgflow flow add|list|show|delete`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::bail;
use pgflow_core::Flow;
use pgflow_db::api::{self, CompileStatus};
use pgflow_db::inspect::{self, FlowStep};
use pgflow_handlers::Registry;
use serde_json::{json, Value};

use crate::context::db_error;
use crate::output::{plural, print_json, timestamp, Table};
use crate::{flowfile, Context};

/// Arguments of `pgflow flow`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: FlowCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FlowCommand {
    /// Register a flow from a definition file (.json, .toml, .yaml/.yml).
    ///
    /// Steps may be listed in any order; unknown keys are refused. A flow
    /// that exists with the same shape gets the file's options (the changes
    /// are printed). A flow that exists with another shape is refused (the
    /// differences are printed) unless --allow-data-loss, which deletes it
    /// with all its runs and recreates it. Steps' `handler` specs are
    /// validated first (nothing is stored when one is wrong) and stored with
    /// the flow; they are configuration, not shape: changing one updates it
    /// in place, and a step without one in the file has its stored handler
    /// removed.
    Add {
        /// The flow file.
        file: PathBuf,
        /// Recreate a flow whose shape differs, deleting all of its runs.
        #[arg(long)]
        allow_data_loss: bool,
    },
    /// List flows with their options and runs per status.
    List,
    /// Show a flow's steps, options and DAG.
    Show {
        /// The flow slug.
        slug: String,
    },
    /// Delete a flow, its queue and all of its runs.
    Delete {
        /// The flow slug.
        slug: String,
        /// Confirm the deletion (required).
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `pgflow flow` subcommand.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        FlowCommand::Add {
            file,
            allow_data_loss,
        } => add(ctx, file, allow_data_loss).await,
        FlowCommand::List => list(ctx).await,
        FlowCommand::Show { slug } => show(ctx, &slug).await,
        FlowCommand::Delete { slug, yes } => delete(ctx, &slug, yes).await,
    }
}

/// Checks every handler spec of a flow file, all errors at once, each naming
/// the flow, the step and the field.
fn validate_handlers(flow: &Flow, handlers: &BTreeMap<String, Value>) -> anyhow::Result<()> {
    let registry = Registry::builtin();
    let errors: Vec<String> = handlers
        .iter()
        .filter_map(|(step, spec)| {
            registry
                .prepare(spec)
                .err()
                .map(|e| e.in_step(flow.slug(), step.as_str()).to_string())
        })
        .collect();
    if !errors.is_empty() {
        bail!(
            "invalid handler spec; nothing was stored:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(())
}

async fn add(ctx: &Context, file: PathBuf, allow_data_loss: bool) -> anyhow::Result<ExitCode> {
    // Validate the file, handlers included, before touching the database.
    let (flow, handlers) = flowfile::load_with_handlers(&file)?;
    validate_handlers(&flow, &handlers)?;
    let pool = ctx.pool().await?;
    let shape = flow.shape().to_json();
    // One transaction: options and handlers are applied to exactly the shape
    // that was verified, under the flow's compile lock; a refused shape
    // stores nothing, and a failed write leaves no new flow behind.
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| anyhow::anyhow!("cannot start a transaction: {e}"))?;
    let outcome = api::ensure_flow_compiled(&mut *tx, flow.slug(), &shape, allow_data_loss)
        .await
        .map_err(db_error)?;
    let changes = if outcome.status == CompileStatus::Verified {
        api::apply_flow_options(&mut *tx, flow.slug(), &shape)
            .await
            .map_err(db_error)?
    } else {
        Vec::new()
    };
    let mut handlers_changed = 0;
    if outcome.status != CompileStatus::Mismatch {
        let stored: BTreeMap<String, Value> = api::step_handlers(&mut *tx, flow.slug())
            .await
            .map_err(db_error)?
            .into_iter()
            .collect();
        for step in flow.steps() {
            let wanted = handlers.get(&step.slug);
            if stored.get(&step.slug) != wanted {
                api::set_step_handler(&mut *tx, flow.slug(), &step.slug, wanted)
                    .await
                    .map_err(db_error)?;
                handlers_changed += 1;
            }
        }
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!("cannot commit the flow: {e}"))?;
    let differences = outcome.differences_between("file", "database");
    let status = match outcome.status {
        CompileStatus::Compiled => "compiled",
        CompileStatus::Verified => "verified",
        CompileStatus::Recompiled => "recompiled",
        CompileStatus::Mismatch => "mismatch",
    };
    if ctx.json {
        print_json(&json!({
            "flow_slug": flow.slug(),
            "status": status,
            "differences": differences,
            "options_changed": changes,
            "handlers": handlers.len(),
            "handlers_changed": handlers_changed,
        }))?;
    } else {
        let s = ctx.style;
        match outcome.status {
            CompileStatus::Compiled => println!(
                "flow {} registered ({})",
                s.bold(flow.slug()),
                plural(flow.steps().len(), "step")
            ),
            CompileStatus::Verified if changes.is_empty() => println!(
                "flow {} already registered with the same shape and options; nothing to do",
                s.bold(flow.slug())
            ),
            CompileStatus::Verified => {
                println!(
                    "flow {} already registered with the same shape; options updated:",
                    s.bold(flow.slug())
                );
                for change in &changes {
                    println!("  - {}", describe_change(change));
                }
            }
            CompileStatus::Recompiled => {
                println!(
                    "flow {} recreated; its previous runs were deleted. Differences:",
                    s.bold(flow.slug())
                );
                for d in &differences {
                    println!("  - {d}");
                }
            }
            CompileStatus::Mismatch => {}
        }
        if handlers_changed > 0 && outcome.status != CompileStatus::Mismatch {
            println!(
                "{} stored or updated ({} with a handler)",
                plural(handlers_changed, "step handler"),
                plural(handlers.len(), "step")
            );
        }
    }
    if outcome.status == CompileStatus::Mismatch {
        let mut msg = format!(
            "flow {} exists in the database with a different shape than in {}; nothing changed. Differences:",
            flow.slug(),
            file.display()
        );
        for d in &differences {
            msg.push_str(&format!("\n  - {d}"));
        }
        msg.push_str(
            "\nhint: register it under a new slug (e.g. a version suffix), or pass \
             --allow-data-loss to delete the flow with all its runs and recreate it",
        );
        bail!(msg);
    }
    Ok(ExitCode::SUCCESS)
}

/// One applied option change, e.g. `step load: timeout 30s -> 60s`.
fn describe_change(change: &api::OptionChange) -> String {
    let unit = if change.option == "maxAttempts" {
        ""
    } else {
        "s"
    };
    let value = |v: Option<i32>| match v {
        Some(v) => format!("{v}{unit}"),
        None => "(the flow's)".to_string(),
    };
    let place = match &change.step {
        Some(step) => format!("step {step}"),
        None => "flow".to_string(),
    };
    format!(
        "{place}: {} {} -> {}",
        change.option,
        value(change.old),
        value(change.new)
    )
}

async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let flows = inspect::list_flows(&pool).await.map_err(db_error)?;
    if ctx.json {
        print_json(&flows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if flows.is_empty() {
        println!("no flows registered (add one with `pgflow flow add FILE`)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new([
        "FLOW",
        "STEPS",
        "MAX_ATTEMPTS",
        "BASE_DELAY",
        "TIMEOUT",
        "STARTED",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "CREATED",
    ]);
    for f in &flows {
        table.row(vec![
            f.flow_slug.clone(),
            f.step_count.to_string(),
            f.opt_max_attempts.to_string(),
            format!("{}s", f.opt_base_delay),
            format!("{}s", f.opt_timeout),
            f.runs_started.to_string(),
            f.runs_completed.to_string(),
            f.runs_failed.to_string(),
            f.runs_cancelled.to_string(),
            timestamp(&f.created_at),
        ]);
    }
    table.print(ctx.style);
    Ok(ExitCode::SUCCESS)
}

fn unknown_flow(slug: &str) -> anyhow::Error {
    anyhow::anyhow!("unknown flow {slug:?}: no such flow in this database (see `pgflow flow list`)")
}

/// The level of each step: 0 for roots, else one more than its deepest parent.
pub fn levels(steps: &[FlowStep]) -> Vec<usize> {
    let mut by_slug: HashMap<&str, usize> = HashMap::new();
    // Steps come in step_index order, which is topological.
    steps
        .iter()
        .map(|s| {
            let level = s
                .dependencies
                .iter()
                .filter_map(|d| by_slug.get(d.as_str()))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            by_slug.insert(&s.step_slug, level);
            level
        })
        .collect()
}

/// The DAG drawn by level: each step with its parents; leaves feed the output.
pub fn draw_dag(steps: &[FlowStep]) -> Vec<String> {
    let levels = levels(steps);
    let parents: std::collections::HashSet<&str> = steps
        .iter()
        .flat_map(|s| s.dependencies.iter().map(String::as_str))
        .collect();
    let max_level = levels.iter().copied().max().unwrap_or(0);
    let mut lines = Vec::new();
    for level in 0..=max_level {
        let mut first = true;
        for (step, _) in steps.iter().zip(&levels).filter(|(_, l)| **l == level) {
            let label = if first {
                format!("level {level}")
            } else {
                String::new()
            };
            first = false;
            let kind = if step.step_type == "map" {
                " [map]"
            } else {
                ""
            };
            let deps = if step.dependencies.is_empty() {
                "(root: run input)".to_string()
            } else {
                format!("<- {}", step.dependencies.join(", "))
            };
            let leaf = if parents.contains(step.step_slug.as_str()) {
                ""
            } else {
                "  -> output"
            };
            lines.push(format!(
                "  {label:<8}  o {}{kind}  {deps}{leaf}",
                step.step_slug
            ));
        }
        if level < max_level {
            lines.push(format!("  {:<8}  |", ""));
        }
    }
    lines
}

fn step_options(s: &FlowStep) -> String {
    let mut parts = Vec::new();
    if let Some(v) = s.opt_max_attempts {
        parts.push(format!("maxAttempts={v}"));
    }
    if let Some(v) = s.opt_base_delay {
        parts.push(format!("baseDelay={v}s"));
    }
    if let Some(v) = s.opt_timeout {
        parts.push(format!("timeout={v}s"));
    }
    if let Some(v) = s.opt_start_delay {
        parts.push(format!("startDelay={v}s"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn step_conditions(s: &FlowStep) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &s.required_input_pattern {
        parts.push(format!("if {p}"));
    }
    if let Some(p) = &s.forbidden_input_pattern {
        parts.push(format!("ifNot {p}"));
    }
    if !parts.is_empty() {
        parts.push(format!("whenUnmet={}", s.when_unmet));
    }
    if s.when_exhausted != "fail" {
        parts.push(format!("whenExhausted={}", s.when_exhausted));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// The handler column: the kind and its main target (URL, model, command).
fn handler_summary(spec: Option<&Value>) -> String {
    let Some(spec) = spec else {
        return "-".into();
    };
    let kind = spec["kind"].as_str().unwrap_or("?");
    let detail = match kind {
        "http" => spec["url"].as_str().map(str::to_string),
        "llm" => spec["model"].as_str().map(str::to_string),
        "exec" => spec["command"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    match detail {
        Some(d) => format!("{kind} {d}"),
        None => kind.to_string(),
    }
}

async fn show(ctx: &Context, slug: &str) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let Some(flow) = inspect::get_flow(&pool, slug).await.map_err(db_error)? else {
        return Err(unknown_flow(slug));
    };
    let steps = inspect::flow_steps(&pool, slug).await.map_err(db_error)?;
    let handlers: BTreeMap<String, Value> = api::step_handlers(&pool, slug)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    if ctx.json {
        let levels = levels(&steps);
        let steps_json: Vec<_> = steps
            .iter()
            .zip(levels)
            .map(|(s, level)| {
                let mut v = serde_json::to_value(s).expect("rows serialize");
                v["level"] = json!(level);
                v["handler"] = handlers.get(&s.step_slug).cloned().unwrap_or(Value::Null);
                v
            })
            .collect();
        print_json(&json!({"flow": flow, "steps": steps_json}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = ctx.style;
    println!("{} {}", s.bold("flow"), s.bold(&flow.flow_slug));
    println!(
        "  options: maxAttempts={} baseDelay={}s timeout={}s",
        flow.opt_max_attempts, flow.opt_base_delay, flow.opt_timeout
    );
    println!(
        "  runs: {} started, {} completed, {} failed, {} cancelled",
        flow.runs_started, flow.runs_completed, flow.runs_failed, flow.runs_cancelled
    );
    println!("  created: {}", timestamp(&flow.created_at));
    println!();
    let mut table = Table::new([
        "#",
        "STEP",
        "TYPE",
        "DEPENDS ON",
        "OPTIONS",
        "CONDITIONS",
        "HANDLER",
    ]);
    for st in &steps {
        table.row(vec![
            st.step_index.to_string(),
            st.step_slug.clone(),
            st.step_type.clone(),
            if st.dependencies.is_empty() {
                "-".into()
            } else {
                st.dependencies.join(", ")
            },
            step_options(st),
            step_conditions(st),
            handler_summary(handlers.get(&st.step_slug)),
        ]);
    }
    table.print(s);
    for st in &steps {
        if let Some(spec) = handlers.get(&st.step_slug) {
            println!("  handler of {}: {spec}", st.step_slug);
        }
    }
    println!();
    println!("{}", s.bold("DAG"));
    for line in draw_dag(&steps) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(ctx: &Context, slug: &str, yes: bool) -> anyhow::Result<ExitCode> {
    if !yes {
        bail!(
            "refusing to delete flow {slug:?} and all of its runs without --yes \
             (run `pgflow flow delete {slug} --yes`)"
        );
    }
    let pool = ctx.pool().await?;
    let Some(flow) = inspect::get_flow(&pool, slug).await.map_err(db_error)? else {
        return Err(unknown_flow(slug));
    };
    inspect::delete_flow(&pool, slug).await.map_err(db_error)?;
    let runs = flow.runs_started + flow.runs_completed + flow.runs_failed + flow.runs_cancelled;
    if ctx.json {
        print_json(&json!({"flow_slug": slug, "deleted": true, "runs_deleted": runs}))?;
    } else {
        println!("flow {slug} deleted with its queue and {runs} run(s)");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(slug: &str, ty: &str, deps: &[&str]) -> FlowStep {
        FlowStep {
            step_slug: slug.into(),
            step_index: 0,
            step_type: ty.into(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            opt_max_attempts: None,
            opt_base_delay: None,
            opt_timeout: None,
            opt_start_delay: None,
            required_input_pattern: None,
            forbidden_input_pattern: None,
            when_unmet: "skip".into(),
            when_exhausted: "fail".into(),
        }
    }

    #[test]
    fn dag_is_drawn_by_level() {
        let steps = vec![
            step("split", "single", &[]),
            step("meta", "single", &[]),
            step("count", "map", &["split"]),
            step("report", "single", &["count", "meta"]),
        ];
        assert_eq!(levels(&steps), vec![0, 0, 1, 2]);
        assert_eq!(
            draw_dag(&steps),
            vec![
                "  level 0   o split  (root: run input)",
                "            o meta  (root: run input)",
                "            |",
                "  level 1   o count [map]  <- split",
                "            |",
                "  level 2   o report  <- count, meta  -> output",
            ]
        );
    }
}
