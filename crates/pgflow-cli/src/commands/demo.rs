//! `pgflow demo`: a self-contained tour. Starts a throwaway PostgreSQL (when
//! no database is given), installs pgflow, registers `demo_pipeline`, runs it
//! with several in-process workers while drawing live progress, prints the
//! result and how to inspect it, and removes the cluster on exit, including
//! on Ctrl-C / SIGTERM.
//!
//! `demo_pipeline`:
//! ```text
//! level 0   split (text -> chunks)        meta (title, size)
//! level 1   count_words [map over split]
//! level 2   aggregate <- count_words
//! level 3   report <- aggregate, meta      -> run output
//! ```

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use pgflow::{Client, CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
use pgflow_db::error::redact_url;
use pgflow_pgtemp::TempCluster;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::context::connect;
use crate::output::{self, print_json};
use crate::progress::{self, Renderer};
use crate::Context;

/// The demo flow's slug.
pub const FLOW_SLUG: &str = "demo_pipeline";

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

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    title: String,
    text: String,
    chunk_words: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChunkStats {
    words: usize,
    longest_word: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Totals {
    chunks: usize,
    words: usize,
    longest_word: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    title: String,
    chars: usize,
}

#[derive(Debug, Deserialize)]
struct AggregateInput {
    count_words: Vec<ChunkStats>,
}

#[derive(Debug, Deserialize)]
struct ReportInput {
    aggregate: Totals,
    meta: Meta,
}

const TEXT: &str = "Workflows coordinate steps that depend on one another. A map step fans \
    out over an array and a later step fans the results back in. Postgres keeps every state \
    transition, so workers may crash and restart while the run carries on. Queues deliver \
    tasks, workers report results, and the database decides what runs next. Nothing walks \
    the graph at run time: counters on each step decide when it is ready, and the run \
    completes when the last of them reaches zero. Parallel branches join at the end.";

/// The demo flow: a map step with a fan-in, plus a parallel branch joining
/// at the end. Handlers sleep a little so the progress is visible.
pub fn pipeline() -> Result<WorkerFlow, pgflow::FlowError> {
    WorkerFlow::builder(FLOW_SLUG)
        .max_attempts(3)
        .base_delay(1)
        .timeout(10)
        .step(StepDef::single("split"), |doc: Document, _ctx| async move {
            if doc.chunk_words == 0 {
                return Err("chunk_words must be positive".to_string());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let words: Vec<&str> = doc.text.split_whitespace().collect();
            Ok(words
                .chunks(doc.chunk_words)
                .map(|c| c.join(" "))
                .collect::<Vec<_>>())
        })
        .step(StepDef::single("meta"), |doc: Document, _ctx| async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok::<_, String>(Meta {
                chars: doc.text.chars().count(),
                title: doc.title,
            })
        })
        .step(
            StepDef::map("count_words").array("split"),
            |chunk: String, ctx| async move {
                // Different tasks take different times, as real work would.
                let ms = 150 + 60 * (ctx.task_index() as u64 % 5);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let words: Vec<String> = chunk
                    .split_whitespace()
                    .map(|w| {
                        w.trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase()
                    })
                    .collect();
                let longest_word = words
                    .iter()
                    .max_by_key(|w| w.len())
                    .cloned()
                    .unwrap_or_default();
                Ok::<_, String>(ChunkStats {
                    words: words.len(),
                    longest_word,
                })
            },
        )
        .step(
            StepDef::single("aggregate").depends_on(["count_words"]),
            |input: AggregateInput, _ctx| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let stats = input.count_words;
                Ok::<_, String>(Totals {
                    chunks: stats.len(),
                    words: stats.iter().map(|s| s.words).sum(),
                    longest_word: stats
                        .iter()
                        .map(|s| s.longest_word.clone())
                        .max_by_key(|w| w.len())
                        .unwrap_or_default(),
                })
            },
        )
        .step(
            StepDef::single("report").depends_on(["aggregate", "meta"]),
            |input: ReportInput, _ctx| async move {
                Ok::<_, String>(format!(
                    "{:?}: {} words ({} chars) in {} chunks; longest word {:?}",
                    input.meta.title,
                    input.aggregate.words,
                    input.meta.chars,
                    input.aggregate.chunks,
                    input.aggregate.longest_word
                ))
            },
        )
        .build()
}

/// A flag that flips to true on SIGINT or SIGTERM. The handlers are
/// installed at once, so a signal during startup is not fatal either.
fn interrupt_flag() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn interrupted(flag: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, i.e. no signal will come.
    if flag.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the demo.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut flag = interrupt_flag()?;
    if args.serve {
        return serve(ctx, &args, &mut flag).await;
    }
    let say = |text: String| {
        // Narration goes to stderr in --json mode so stdout stays parseable.
        if ctx.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };

    let (url, cluster) = match &ctx.database_url {
        Some(url) => {
            say(format!("using the database at {}", redact_url(url)));
            (url.clone(), None)
        }
        None => {
            say("starting a throwaway PostgreSQL cluster...".into());
            let start = tokio::task::spawn_blocking(TempCluster::start);
            let cluster = tokio::select! {
                started = start => started.context("cluster start panicked")?
                    .context("cannot start a throwaway PostgreSQL (are the server binaries installed? set PGFLOW_PG_BIN or put pg_ctl on PATH), or pass --database-url")?,
                _ = interrupted(&mut flag) => {
                    // The blocking start cannot be cancelled; the cluster it
                    // may still create is cleaned up by its watchdog below.
                    eprintln!("interrupted");
                    return Ok(ExitCode::from(130));
                }
            };
            if !args.keep {
                // Belt and braces: if this process dies without unwinding
                // (SIGKILL), a watchdog still stops and deletes the cluster.
                cluster.stop_when_process_exits()?;
            }
            let url = cluster.url("postgres");
            say(format!("  PostgreSQL is up at {url}"));
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

    if let Some(cluster) = cluster {
        if args.keep {
            let stop = if cluster_runs_as_service_account() {
                format!(
                    "runuser -u postgres -- {} stop -D {} && rm -rf {}",
                    cluster.bin_dir().join("pg_ctl").display(),
                    cluster.data_dir().display(),
                    cluster
                        .data_dir()
                        .parent()
                        .unwrap_or(cluster.data_dir())
                        .display()
                )
            } else {
                format!(
                    "{} stop -D {} && rm -rf {}",
                    cluster.bin_dir().join("pg_ctl").display(),
                    cluster.data_dir().display(),
                    cluster
                        .data_dir()
                        .parent()
                        .unwrap_or(cluster.data_dir())
                        .display()
                )
            };
            say(format!(
                "\nthe cluster keeps running at {url}\nstop and remove it with:\n  {stop}"
            ));
            // Skips Drop, which would stop the server and delete its files.
            std::mem::forget(cluster);
        } else {
            tokio::task::spawn_blocking(move || drop(cluster))
                .await
                .context("cluster cleanup panicked")?;
            say("throwaway cluster stopped and removed".into());
        }
    }
    result
}

fn cluster_runs_as_service_account() -> bool {
    // TempCluster runs the server as `postgres` exactly when we are root.
    nix::unistd::Uid::effective().is_root()
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
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        workers.push(
            Worker::new(pool.clone(), worker_config())
                .flow(pipeline()?)
                .start()
                .await?,
        );
    }
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

async fn tour(
    ctx: &Context,
    url: &str,
    args: &Args,
    cluster: Option<&TempCluster>,
) -> anyhow::Result<ExitCode> {
    let say = |text: String| {
        if ctx.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    let report = pgflow_db::install::install(url).await?;
    say(format!("installed: {report}"));

    let pool = connect(url, 4 + 4 * u32::from(args.workers)).await?;
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        workers.push(
            Worker::new(pool.clone(), worker_config())
                .flow(pipeline()?)
                .start()
                .await?,
        );
    }
    say(format!(
        "registered flow {FLOW_SLUG} and started {} workers",
        workers.len()
    ));

    let input = Document {
        title: "On workflows".into(),
        text: TEXT.into(),
        chunk_words: 8,
    };
    let run = Client::new(pool.clone())
        .start_flow(FLOW_SLUG, &input)
        .await?;
    say(format!("started run {}\n", run.run_id()));

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
    if ctx.json {
        print_json(&json!({
            "database_url": shown_url,
            "run": snap,
        }))?;
    } else {
        println!();
        if let Some(out) = &snap.run.output {
            println!("result:");
            println!("{}", serde_json::to_string_pretty(out)?);
        }
        println!();
        let psql = cluster
            .map(|c| c.bin_dir().join("psql").display().to_string())
            .unwrap_or_else(|| "psql".into());
        let text = include_str!("demo_inspect.txt")
            .replace("{psql}", &psql)
            .replace("{url}", &shown_url)
            .replace("{run_id}", &snap.run.run_id.to_string());
        print!("{text}");
        if cluster.is_some() && !args.keep {
            println!(
                "(the throwaway cluster is removed when the demo exits; run `pgflow demo --keep` to keep it)"
            );
        }
        println!(
            "\ndemo run {} in {}",
            ctx.style.status(snap.run.status.as_str()),
            output::duration(snap.run.duration_secs)
        );
    }
    pool.close().await;
    Ok(ExitCode::from(progress::exit_code(snap.run.status)))
}
