//! The pgflow-rs benchmark harness, shared by the `pgflow-bench` binary and
//! `pgflow bench`.
//!
//! One run measures, against the same server and with `--workers N` real
//! worker processes (this binary re-executed with the hidden `worker`
//! subcommand, serving both bench flows with the default worker settings):
//!
//! - **reference**: commits/s of single-row `UPDATE`s from N clients, each on
//!   its own connection, for ~5 s. Every figure is also given as a ratio to it.
//! - **map**: one run of a 10,000-element map of no-op handlers and a fan-in;
//!   tasks/s from run start to run completion.
//! - **chain**: 500 runs of a 5-step chain started in one transaction;
//!   steps/s and runs/s from the first start to the last completion.
//! - **latency**: 30 chain runs one at a time on idle workers; per-hop
//!   latency (parent completed -> child task started) p50/p95/p99 and run
//!   latency, from database timestamps.
//! - **idle**: 30 s with nothing to do; statements/s per worker (from
//!   `pg_stat_statements` when available, else `pg_stat_database`) and the
//!   workers' CPU from `/proc/<pid>/stat`.
//!
//! Without a database URL it starts a throwaway cluster with **durable**
//! settings (fsync and synchronous_commit on, PostgreSQL's defaults), so
//! the figures are what users get.
//!
//! ```text
//! cargo run --release -p pgflow-bench -- [--database-url URL] [--workers N] [--json]
//! ```

#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod db;
pub mod flows;
pub mod procs;
pub mod report;
pub mod worker;
pub mod workloads;

use std::str::FromStr;
use std::time::Duration;

use pgflow::db::api;
use pgflow_pgtemp::{TempCluster, TempClusterOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use procs::SelfCommand;
pub use report::Report;

use procs::Workers;
use report::{Machine, WorkerSettings};
use workloads::QueryCounter;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A harness query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A pgflow call failed.
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// The pgflow client failed.
    #[error(transparent)]
    Client(#[from] pgflow::ClientError),
    /// Installing pgflow failed.
    #[error("installing pgflow: {0}")]
    Install(#[from] pgflow::db::DbError),
    /// A bench flow is invalid (a bug).
    #[error("bench flow: {0}")]
    Flow(#[from] pgflow::FlowError),
    /// The worker failed to start or stop.
    #[error("worker: {0}")]
    Worker(#[from] pgflow::WorkerError),
    /// The throwaway cluster failed.
    #[error("throwaway PostgreSQL: {0}")]
    Cluster(#[from] pgflow_pgtemp::PgTempError),
    /// Process or terminal I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A worker process did not come up.
    #[error("worker process: {0}")]
    WorkerStart(String),
    /// A worker process did not stop cleanly.
    #[error("worker processes: {0}")]
    WorkerStop(String),
    /// A worker process was started without its URL.
    #[error(
        "the worker subcommand is internal: it expects its database URL in ${}",
        worker::URL_ENV
    )]
    WorkerUrlMissing,
    /// Bench runs did not complete.
    #[error("{0} bench run(s) failed or were cancelled")]
    RunsFailed(usize),
    /// A workload took too long.
    #[error("a workload did not finish within {0:?}")]
    Timeout(Duration),
    /// A background task panicked.
    #[error("a measuring task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The dashboard workload failed.
    #[error("dashboard: {0}")]
    Dashboard(String),
}

/// The benchmark's options (everything but the database URL and `--json`,
/// which the `pgflow` CLI takes globally).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Internal: run as one of the harness's worker processes.
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Worker processes (and reference clients).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Seconds of the idle measurement.
    #[arg(long, default_value_t = 30)]
    pub idle_secs: u64,
    /// Elements of the map run.
    #[arg(long, default_value_t = 10_000)]
    pub map_size: usize,
    /// Chain runs started at once.
    #[arg(long, default_value_t = 500)]
    pub chain_runs: usize,
    /// Chain runs for the latency measurement, one at a time.
    #[arg(long, default_value_t = 30)]
    pub latency_runs: usize,
    /// Seconds of the reference measurement.
    #[arg(long, default_value_t = 5.0)]
    pub reference_secs: f64,
    /// Print the top statements of each workload (needs pg_stat_statements).
    #[arg(long)]
    pub profile: bool,
    /// Worker tuning to compare against (default: what users get).
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// Worker settings that can be switched off for comparison.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkerArgs {
    /// Workers long-poll instead of LISTENing on `pgflow_tasks`.
    #[arg(long)]
    pub no_listen: bool,
    /// Workers report every task with its own `complete_task`.
    #[arg(long)]
    pub no_batch: bool,
    /// Override `WorkerConfig::batch_size` (messages read per poll).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Override `WorkerConfig::max_concurrent` (tasks in flight per flow).
    #[arg(long)]
    pub max_concurrent: Option<usize>,
}

/// Internal subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Mode {
    /// One worker process of the harness (started by the harness itself).
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Only the dashboard workload: run-page render time of a 10,000-task
    /// map and the cost of 50 idle live pages.
    #[cfg(feature = "dashboard")]
    Dashboard(dashboard::DashboardArgs),
    /// The dashboard process of the dashboard workload (started by the harness).
    #[cfg(feature = "dashboard")]
    #[command(hide = true)]
    DashboardServer(dashboard::ServerArgs),
}

/// Runs `args`: a worker process, or the whole benchmark printed on stdout
/// (a table, or JSON with `json`). Progress goes to stderr. `self_cmd` says
/// how to re-execute this program as a worker.
pub async fn main(
    database_url: Option<String>,
    json: bool,
    args: BenchArgs,
    self_cmd: SelfCommand,
) -> Result<(), BenchError> {
    match args.mode {
        Some(Mode::Worker(worker_args)) => return worker::run(worker_args).await,
        #[cfg(feature = "dashboard")]
        Some(Mode::DashboardServer(server_args)) => return dashboard::serve(server_args).await,
        #[cfg(feature = "dashboard")]
        Some(Mode::Dashboard(dashboard_args)) => {
            let report =
                dashboard::bench(database_url.as_deref(), &dashboard_args, &self_cmd, &|m| {
                    eprintln!("{m}")
                })
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("the report serializes")
                );
            } else {
                print!("{}", report.table());
            }
            return Ok(());
        }
        None => {}
    }
    let report = bench(database_url.as_deref(), &args, &self_cmd, &|m| {
        eprintln!("{m}")
    })
    .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The settings of the throwaway cluster: PostgreSQL's durable defaults
/// (overriding the test cluster's fsync=off), plus pg_stat_statements.
pub fn durable_cluster_options() -> TempClusterOptions {
    let settings = [
        ("fsync", "on"),
        ("synchronous_commit", "on"),
        ("full_page_writes", "on"),
        ("shared_buffers", "128MB"),
        ("max_connections", "100"),
        ("checkpoint_timeout", "5min"),
        ("max_wal_size", "1GB"),
        ("shared_preload_libraries", "'pg_stat_statements'"),
    ];
    TempClusterOptions {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Runs every workload and returns the report. With `database_url` `None`,
/// starts (and removes) a durable throwaway cluster.
pub async fn bench(
    database_url: Option<&str>,
    args: &BenchArgs,
    self_cmd: &SelfCommand,
    say: &dyn Fn(&str),
) -> Result<Report, BenchError> {
    let mut _cluster = None;
    let (url, server) = match database_url {
        Some(url) => (
            url.to_string(),
            format!("{} (given URL)", pgflow::db::error::redact_url(url)),
        ),
        None => {
            say("starting a throwaway PostgreSQL cluster with durable settings (fsync=on, synchronous_commit=on) ...");
            let cluster =
                tokio::task::spawn_blocking(|| TempCluster::start_with(durable_cluster_options()))
                    .await??;
            cluster.stop_when_process_exits()?;
            let url = cluster.url("postgres");
            _cluster = Some(cluster);
            (
                url,
                "throwaway cluster on this machine, durable settings (fsync=on, synchronous_commit=on, full_page_writes=on)".to_string(),
            )
        }
    };
    let server_is_local = database_url.is_none();
    say("installing pgflow (if missing) ...");
    pgflow::db::install::install(&url).await?;
    let options = PgConnectOptions::from_str(&url)?.application_name("pgflow-bench");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;

    let facts = db::facts(&pool).await?;
    let counter = if facts
        .shared_preload_libraries
        .contains("pg_stat_statements")
        && db::pgss_create(&pool).await.is_ok()
    {
        QueryCounter::Statements
    } else {
        QueryCounter::Transactions
    };
    if args.profile && counter != QueryCounter::Statements {
        say("--profile needs pg_stat_statements (shared_preload_libraries); profiling is off");
    }
    let mut profile = (args.profile && counter == QueryCounter::Statements).then(Vec::new);

    for flow in flows::all()? {
        let shape = flow.flow().shape().to_json();
        api::ensure_flow_compiled(&pool, flow.flow().slug(), &shape, true).await?;
    }

    let n = usize::from(args.workers);
    say(&format!(
        "reference: {n} clients committing single-row UPDATEs for {} s ...",
        args.reference_secs
    ));
    let reference_tps = workloads::reference(&pool, &options, n, args.reference_secs).await?;
    let reference_commit_ms = 1000.0 * n as f64 / reference_tps;

    say(&format!("starting {n} worker processes ..."));
    let workers = Workers::start(self_cmd, &url, n, &args.worker).await?;
    let measured = async {
        say(&format!("map: one run over {} elements ...", args.map_size));
        let map = workloads::profiled(
            &pool,
            profile.as_mut(),
            "map",
            workloads::map(&pool, args.map_size, reference_tps),
        )
        .await?;
        say(&format!(
            "chain: {} runs of 5 steps at once ...",
            args.chain_runs
        ));
        let chain = workloads::profiled(
            &pool,
            profile.as_mut(),
            "chain",
            workloads::chain(&pool, args.chain_runs, reference_tps),
        )
        .await?;
        say(&format!(
            "latency: {} chain runs, one at a time ...",
            args.latency_runs
        ));
        let latency = workloads::profiled(
            &pool,
            profile.as_mut(),
            "latency",
            workloads::latency(&pool, args.latency_runs, reference_commit_ms),
        )
        .await?;
        say(&format!(
            "idle: {} s with nothing to do ...",
            args.idle_secs
        ));
        let idle = workloads::profiled(
            &pool,
            profile.as_mut(),
            "idle",
            workloads::idle(
                &pool,
                &workers,
                n,
                args.idle_secs,
                counter,
                server_is_local,
                reference_tps,
            ),
        )
        .await?;
        Ok::<_, BenchError>((map, chain, latency, idle))
    }
    .await;
    let stopped = workers.stop().await;
    let (map, chain, latency, idle) = measured?;
    stopped?;
    pool.close().await;

    let cfg = worker::config(&args.worker);
    Ok(Report {
        server,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            server: facts,
        },
        workers: n,
        worker_config: WorkerSettings {
            listen: cfg.listen,
            completion_batch_size: cfg.completion_batch_size,
            batch_size: cfg.batch_size,
            max_concurrent: cfg.max_concurrent,
        },
        reference_tps,
        reference_commit_ms,
        map,
        chain,
        latency,
        idle,
        profile,
    })
}
