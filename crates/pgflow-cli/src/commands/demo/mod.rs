//! `pgflow demo`: a self-contained tour. Starts a throwaway PostgreSQL (when
//! no database is given), installs pgflow, registers `demo_pipeline`, runs it
//! with several in-process workers while drawing live progress, prints the
//! result and how to inspect it, and removes the cluster on exit, including
//! on Ctrl-C / SIGTERM.
//!
//! This module only orchestrates: the flow is the `document_pipeline`
//! example's ([`flow`]), the cluster lives in [`cluster`], signals in
//! [`interrupt`], live progress in [`crate::progress`] and the closing output
//! in [`report`].

pub mod cluster;
pub mod interrupt;
pub mod report;

// The example's own file, so the demo and the example cannot drift apart.
#[path = "../../../../pgflow/examples/document_pipeline/flow.rs"]
pub mod flow;

use std::process::ExitCode;
use std::time::Duration;

use pgflow::{Client, CompileMode, RunningWorker, Worker, WorkerConfig, WorkerFlow};
use pgflow_db::error::redact_url;
use pgflow_pgtemp::TempCluster;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::context::connect;
use crate::progress::{self, Renderer};
use crate::Context;
use flow::Document;
use interrupt::interrupted;

/// The demo flow's slug.
pub const FLOW_SLUG: &str = "demo_pipeline";

/// How long the demo's handlers take per unit of work: slow enough for the
/// progress bars to be worth watching.
const PACE: Duration = Duration::from_millis(200);

/// Arguments of `pgflow demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the throwaway cluster running afterwards (prints how to stop it).
    #[arg(long)]
    keep: bool,
    /// How many in-process workers to run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    workers: u16,
    /// Only serve `demo_pipeline` with the workers until SIGINT/SIGTERM,
    /// starting no run (needs a database; used by docker/compose.yaml).
    #[arg(long, conflicts_with = "keep")]
    serve: bool,
}

const TEXT: &str = "Workflows coordinate steps that depend on one another. A map step fans \
    out over an array and a later step fans the results back in. Postgres keeps every state \
    transition, so workers may crash and restart while the run carries on. Queues deliver \
    tasks, workers report results, and the database decides what runs next. Nothing walks \
    the graph at run time: counters on each step decide when it is ready, and the run \
    completes when the last of them reaches zero. Parallel branches join at the end.";

/// The demo flow: the example's document pipeline under [`FLOW_SLUG`].
pub fn pipeline() -> Result<WorkerFlow, pgflow::FlowError> {
    flow::pipeline(FLOW_SLUG, PACE)
}

/// Narration: stdout, or stderr in `--json` mode so stdout stays parseable.
fn say(ctx: &Context, text: &str) {
    if ctx.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// Runs the demo.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut flag = interrupt::flag()?;
    if args.serve {
        return serve(ctx, &args, &mut flag).await;
    }

    let (url, cluster) = match &ctx.database_url {
        Some(url) => {
            say(ctx, &format!("using the database at {}", redact_url(url)));
            (url.clone(), None)
        }
        None => {
            say(ctx, "starting a throwaway PostgreSQL cluster...");
            let Some(cluster) = cluster::start(args.keep, &mut flag).await? else {
                eprintln!("interrupted");
                return Ok(ExitCode::from(130));
            };
            let url = cluster.url("postgres");
            say(ctx, &format!("  PostgreSQL is up at {url}"));
            (url, Some(cluster))
        }
    };

    let result = tokio::select! {
        result = tour(ctx, &url, &args, cluster.as_ref()) => result,
        _ = interrupted(&mut flag) => {
            eprintln!("interrupted; cleaning up");
            Ok(ExitCode::from(130))
        }
    };

    match cluster {
        Some(cluster) if args.keep => {
            let stop = cluster::keep(cluster);
            say(
                ctx,
                &format!(
                    "\nthe cluster keeps running at {url}\n\
                     use it from this shell with:\n  export DATABASE_URL='{url}'\n\
                     stop and remove it with:\n  {stop}"
                ),
            );
        }
        Some(cluster) => {
            cluster::remove(cluster).await?;
            say(ctx, "throwaway cluster stopped and removed");
        }
        None => {}
    }
    result
}

/// Runs the demo workers until a signal: a stand-in for a real worker
/// deployment, so `docker compose up --scale worker=N` has something to run.
async fn serve(
    ctx: &Context,
    args: &Args,
    flag: &mut watch::Receiver<bool>,
) -> anyhow::Result<ExitCode> {
    let url = ctx.url()?;
    let pool = connect(url, 2 + 4 * u32::from(args.workers)).await?;
    let workers = start_workers(&pool, args.workers).await?;
    eprintln!(
        "serving {FLOW_SLUG} with {} workers at {}; start runs with `pgflow run start {FLOW_SLUG} --input '{{\"title\": \"t\", \"text\": \"some words\", \"chunk_words\": 2}}'`; stop with Ctrl-C",
        workers.len(),
        redact_url(url)
    );
    interrupted(flag).await;
    eprintln!("stopping workers...");
    for worker in workers {
        worker.shutdown().await?;
    }
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `count` in-process workers serving the demo flow.
async fn start_workers(pool: &PgPool, count: u16) -> anyhow::Result<Vec<RunningWorker>> {
    let mut workers = Vec::new();
    for _ in 0..count {
        let worker = Worker::new(pool.clone(), worker_config()).flow(pipeline()?);
        workers.push(worker.start().await?);
    }
    Ok(workers)
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        // The demo owns its flow: recompiling a changed definition is fine.
        compile_mode: CompileMode::Development,
        function_name: "pgflow-demo".into(),
        max_concurrent: 3,
        // Short polls and grace make the shutdown at the end quick.
        max_poll: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Install, start workers, run the flow once while showing progress, stop
/// the workers, print the outcome.
async fn tour(
    ctx: &Context,
    url: &str,
    args: &Args,
    cluster: Option<&TempCluster>,
) -> anyhow::Result<ExitCode> {
    let report = pgflow_db::install::install(url).await?;
    say(ctx, &format!("installed: {report}"));

    let pool = connect(url, 4 + 4 * u32::from(args.workers)).await?;
    let workers = start_workers(&pool, args.workers).await?;
    say(
        ctx,
        &format!(
            "registered flow {FLOW_SLUG} and started {} workers",
            workers.len()
        ),
    );

    let input = Document {
        title: "On workflows".into(),
        text: TEXT.into(),
        chunk_words: 8,
    };
    let run = Client::new(pool.clone())
        .start_flow(FLOW_SLUG, &input)
        .await?;
    say(ctx, &format!("started run {}\n", run.run_id()));

    let mut renderer = Renderer::new(ctx.style, ctx.stdout_is_terminal && !ctx.json);
    let watched = tokio::time::timeout(
        Duration::from_secs(60),
        progress::watch(
            &pool,
            run.run_id(),
            (!ctx.json).then_some(&mut renderer),
            Duration::from_millis(150),
        ),
    )
    .await;

    for worker in workers {
        if let Err(err) = worker.shutdown().await {
            tracing::warn!(%err, "worker shutdown");
        }
    }
    let snap =
        watched.map_err(|_| anyhow::anyhow!("the demo run did not finish within 60 s"))??;

    let shown_url = if cluster.is_some() {
        url.to_string()
    } else {
        redact_url(url)
    };
    let target = report::Target {
        url: &shown_url,
        psql: cluster
            .map(|c| c.bin_dir().join("psql").display().to_string())
            .unwrap_or_else(|| "psql".into()),
        removed_on_exit: cluster.is_some() && !args.keep,
    };
    report::print(ctx, &snap, &target)?;
    pool.close().await;
    Ok(ExitCode::from(progress::exit_code(snap.run.status)))
}
