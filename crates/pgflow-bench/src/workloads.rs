//! The workloads and how each figure is measured.

use std::time::{Duration, Instant};

use pgflow::db::api;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

use crate::db;
use crate::flows::{CHAIN_FLOW, CHAIN_STEPS, MAP_FLOW};
use crate::procs::{self, Workers};
use crate::report::{ChainResult, IdleResult, LatencyResult, MapResult, PhaseProfile};
use crate::{worker, BenchError};

/// How long a throughput workload may take before the harness gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The machine's reference: `clients` tasks, each on its own connection,
/// commit single-row UPDATEs (autocommit) for `secs`; returns commits/s.
pub async fn reference(
    pool: &PgPool,
    options: &PgConnectOptions,
    clients: usize,
    secs: f64,
) -> Result<f64, BenchError> {
    db::ref_setup(pool, clients as i32).await?;
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(options.connect().await?);
    }
    // Warm up (prepare the statement) before the clock starts.
    for (i, c) in conns.iter_mut().enumerate() {
        db::ref_update(&mut *c, i as i32 + 1).await?;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                db::ref_update(&mut conn, i as i32 + 1).await?;
                n += 1;
            }
            Ok::<_, sqlx::Error>(n)
        });
    }
    let mut total = 0u64;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Waits until every run in `runs` is terminal; fails if one did not complete.
async fn wait_all(pool: &PgPool, runs: &[Uuid], poll: Duration) -> Result<(), BenchError> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let (completed, failed) = db::runs_status(pool, runs).await?;
        if failed > 0 {
            return Err(BenchError::RunsFailed(failed as usize));
        }
        if completed as usize >= runs.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(RUN_TIMEOUT));
        }
        tokio::time::sleep(poll).await;
    }
}

/// One run of the map flow over `size` elements; tasks/s from the run's
/// start to its completion (database clock).
pub async fn map(pool: &PgPool, size: usize, reference: f64) -> Result<MapResult, BenchError> {
    let input = json!((0..size).collect::<Vec<_>>());
    let run = api::start_flow(pool, MAP_FLOW, &input, None).await?;
    let runs = [run.run_id];
    wait_all(pool, &runs, Duration::from_millis(50)).await?;
    let secs = db::runs_span(pool, &runs).await?;
    let tasks = size + 1;
    let tasks_per_s = tasks as f64 / secs;
    Ok(MapResult {
        tasks,
        secs,
        tasks_per_s,
        ratio: tasks_per_s / reference,
    })
}

/// `runs` runs of the 5-step chain started in one transaction; steps/s and
/// runs/s from the first start to the last completion (database clock).
pub async fn chain(pool: &PgPool, runs: usize, reference: f64) -> Result<ChainResult, BenchError> {
    let ids = db::start_runs(pool, CHAIN_FLOW, runs as i32).await?;
    wait_all(pool, &ids, Duration::from_millis(50)).await?;
    let secs = db::runs_span(pool, &ids).await?;
    let steps = runs * CHAIN_STEPS.len();
    let steps_per_s = steps as f64 / secs;
    Ok(ChainResult {
        runs,
        steps,
        secs,
        steps_per_s,
        runs_per_s: runs as f64 / secs,
        ratio: steps_per_s / reference,
    })
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `runs` chain runs one at a time on idle workers; per-hop and per-run
/// latency from database timestamps.
pub async fn latency(
    pool: &PgPool,
    runs: usize,
    commit_ms: f64,
) -> Result<LatencyResult, BenchError> {
    let client = pgflow::Client::new(pool.clone());
    let mut ids = Vec::with_capacity(runs);
    for i in 0..runs {
        // Let the workers go idle (pollers waiting, result buffers empty).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let run = client.start_flow(CHAIN_FLOW, &json!({ "i": i })).await?;
        let row = tokio::time::timeout(Duration::from_secs(60), run.wait_terminal())
            .await
            .map_err(|_| BenchError::Timeout(Duration::from_secs(60)))??;
        if row.status != pgflow::RunStatus::Completed {
            return Err(BenchError::RunsFailed(1));
        }
        ids.push(run.run_id());
    }
    let mut hops = db::hop_latencies_ms(pool, &ids).await?;
    let mut durations = db::run_durations_ms(pool, &ids).await?;
    hops.sort_by(f64::total_cmp);
    durations.sort_by(f64::total_cmp);
    let hop_p50_ms = percentile(&hops, 50.0);
    Ok(LatencyResult {
        runs,
        hops: hops.len(),
        hop_p50_ms,
        hop_p95_ms: percentile(&hops, 95.0),
        hop_p99_ms: percentile(&hops, 99.0),
        hop_max_ms: hops.last().copied().unwrap_or(f64::NAN),
        run_p50_ms: percentile(&durations, 50.0),
        run_p95_ms: percentile(&durations, 95.0),
        ratio: hop_p50_ms / commit_ms,
    })
}

/// Where idle query counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryCounter {
    /// `pg_stat_statements` top-level calls in this database.
    Statements,
    /// `pg_stat_database` transactions (commits + rollbacks) in this database.
    Transactions,
}

impl QueryCounter {
    pub fn describe(self) -> &'static str {
        match self {
            QueryCounter::Statements => {
                "pg_stat_statements: top-level statements in the bench database"
            }
            QueryCounter::Transactions => {
                "pg_stat_database: xact_commit + xact_rollback of the bench database \
                 (includes any other client of that database; counters lag up to ~1 s)"
            }
        }
    }

    async fn read(self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        match self {
            QueryCounter::Statements => db::pgss_calls(pool).await,
            QueryCounter::Transactions => db::xact_count(pool).await,
        }
    }
}

/// Workers with nothing to do for `secs`: statements per second per worker
/// (from `counter`), the workers' CPU, and (when the server runs on this
/// machine) the CPU of their server processes.
pub async fn idle(
    pool: &PgPool,
    workers: &Workers,
    n_workers: usize,
    secs: u64,
    counter: QueryCounter,
    server_is_local: bool,
    reference: f64,
) -> Result<IdleResult, BenchError> {
    // Settle: the last results are flushed and pollers are waiting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = workers.pids();
    let backend_pids: Vec<u32> = if server_is_local {
        db::backend_pids(pool, worker::APP_NAME)
            .await?
            .into_iter()
            .map(|p| p as u32)
            .collect()
    } else {
        Vec::new()
    };
    let q0 = counter.read(pool).await?;
    let cpu0 = procs::total_cpu(&pids);
    let server0 = procs::total_cpu(&backend_pids);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let q1 = counter.read(pool).await?;
    let cpu1 = procs::total_cpu(&pids);
    let server1 = procs::total_cpu(&backend_pids);
    let elapsed = started.elapsed().as_secs_f64();
    // The first counter read is itself a transaction when counting those.
    let own = if counter == QueryCounter::Transactions {
        1
    } else {
        0
    };
    let queries = (q1 - q0 - own).max(0) as f64;
    let per_worker = queries / elapsed / n_workers as f64;
    let pct = |d: Duration| d.as_secs_f64() / elapsed / n_workers as f64 * 100.0;
    Ok(IdleResult {
        secs: elapsed,
        queries_per_s_per_worker: per_worker,
        query_source: counter.describe().to_string(),
        cpu_percent: pct(cpu1.saturating_sub(cpu0)),
        server_cpu_percent: server_is_local.then(|| pct(server1.saturating_sub(server0))),
        ratio: per_worker / reference,
    })
}

/// Runs `phase` between a `pg_stat_statements` reset and a read of its top
/// statements, when profiling.
pub async fn profiled<T, F>(
    pool: &PgPool,
    profile: Option<&mut Vec<PhaseProfile>>,
    name: &str,
    phase: F,
) -> Result<T, BenchError>
where
    F: std::future::Future<Output = Result<T, BenchError>>,
{
    let Some(profile) = profile else {
        return phase.await;
    };
    db::pgss_reset(pool).await?;
    let out = phase.await?;
    profile.push(PhaseProfile {
        phase: name.to_string(),
        statements: db::pgss_top(pool, 8).await?,
    });
    Ok(out)
}
