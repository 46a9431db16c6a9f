//! `pgflow bench dashboard`: what the web dashboard costs.
//!
//! - **render**: server time (the dashboard's `Server-Timing` header) to
//!   render the run page, and its first page of tasks, of a run with a
//!   10,000-task map half done (5,000 tasks completed, 5,000 running).
//!   Target: under 300 ms.
//! - **idle live pages**: 50 live run pages (server-sent-event streams)
//!   open on that run with nothing happening: database connections the
//!   dashboard holds before and with them open (target: at most one more than
//!   without any page, i.e. the `LISTEN` connection), and the dashboard
//!   process's CPU over the idle period (target: under 5 %).
//!
//! The dashboard runs as its own process (this binary re-executed with the
//! hidden `dashboard-server` mode) so that its CPU can be read from `/proc`.

use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt;
use pgflow::db::api;
use pgflow_pgtemp::TempCluster;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

use crate::{flows, procs, workloads, BenchError, SelfCommand};

/// Options of `pgflow bench dashboard`.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Tasks of the map run whose page is rendered.
    #[arg(long, default_value_t = 10_000)]
    pub tasks: usize,
    /// Run page renders to time.
    #[arg(long, default_value_t = 30)]
    pub requests: usize,
    /// Live pages held open at idle.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Seconds of the idle measurement.
    #[arg(long, default_value_t = 20)]
    pub idle_secs: u64,
}

/// Options of the hidden dashboard process.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// What `pgflow bench dashboard` measured.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardReport {
    /// Tasks of the map run.
    pub tasks: usize,
    /// Run page server time, median, ms.
    pub run_page_p50_ms: f64,
    /// Run page server time, 95th percentile, ms.
    pub run_page_p95_ms: f64,
    /// Run page server time, worst, ms.
    pub run_page_max_ms: f64,
    /// Run page JSON (what live pages re-fetch) server time, median, ms.
    pub run_json_p50_ms: f64,
    /// Bytes of the run page.
    pub run_page_bytes: usize,
    /// Live pages held open.
    pub clients: usize,
    /// Dashboard connections with no live page open (query pool + LISTEN).
    pub connections_without_pages: i64,
    /// Dashboard connections with the live pages open.
    pub connections_with_pages: i64,
    /// Of those, `LISTEN` connections.
    pub listen_connections: i64,
    /// Seconds of the idle measurement.
    pub idle_secs: u64,
    /// Dashboard process CPU over the idle period, percent of one core.
    pub idle_cpu_percent: f64,
}

impl DashboardReport {
    /// The report as a table, with the targets.
    pub fn table(&self) -> String {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let extra = self.connections_with_pages - self.connections_without_pages;
        format!(
            "dashboard: run page of a {tasks}-task map (half done)\n\
             \x20 run page server time     p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms ({bytes} bytes)   target < 300 ms: {v1}\n\
             \x20 run JSON server time     p50 {json:.1} ms\n\
             \x20 {clients} idle live pages      connections {before} -> {after} (+{extra}; {listen} LISTEN)   target <= +1: {v2}\n\
             \x20                          dashboard CPU {cpu:.2} % over {secs} s   target < 5 %: {v3}\n",
            tasks = self.tasks,
            p50 = self.run_page_p50_ms,
            p95 = self.run_page_p95_ms,
            max = self.run_page_max_ms,
            bytes = self.run_page_bytes,
            v1 = verdict(self.run_page_p95_ms < 300.0),
            json = self.run_json_p50_ms,
            clients = self.clients,
            before = self.connections_without_pages,
            after = self.connections_with_pages,
            listen = self.listen_connections,
            v2 = verdict(extra <= 1),
            cpu = self.idle_cpu_percent,
            secs = self.idle_secs,
            v3 = verdict(self.idle_cpu_percent < 5.0),
        )
    }
}

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Dashboard(message.to_string())
}

/// The hidden dashboard process: serves `$PGFLOW_BENCH_WORKER_URL`, prints
/// `LISTENING <addr>`, stops when stdin closes.
pub async fn serve(args: ServerArgs) -> Result<(), BenchError> {
    let url = std::env::var(crate::worker::URL_ENV).map_err(|_| BenchError::WorkerUrlMissing)?;
    let options = PgConnectOptions::from_str(&url)?;
    let dashboard = pgflow_dashboard::Dashboard::start(
        options,
        pgflow_dashboard::DashboardConfig {
            listen: args.listen,
            ..Default::default()
        },
    )
    .await
    .map_err(err)?;
    println!("LISTENING {}", dashboard.local_addr());
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut sink).await;
    dashboard.shutdown().await;
    Ok(())
}

/// A run of the bench map flow with `tasks` tasks, half completed, the
/// other half claimed and running.
async fn half_done_map(pool: &PgPool, tasks: usize) -> Result<Uuid, BenchError> {
    let flow = flows::map_flow()?;
    api::ensure_flow_compiled(pool, flows::MAP_FLOW, &flow.flow().shape().to_json(), true).await?;
    let input = Value::from((0..tasks).collect::<Vec<_>>());
    let run = api::start_flow(pool, flows::MAP_FLOW, &input, None)
        .await?
        .run_id;
    let worker = Uuid::new_v4();
    api::register_worker(pool, flows::MAP_FLOW, worker, "pgflow-bench-dashboard").await?;
    let output = Value::from(1);
    let mut claimed = 0;
    while claimed < tasks {
        let batch =
            api::claim_tasks(pool, flows::MAP_FLOW, worker, Uuid::new_v4(), 1000, 3600).await?;
        if batch.is_empty() {
            return Err(err(format!(
                "only {claimed} of {tasks} tasks could be claimed"
            )));
        }
        claimed += batch.len();
        let done: Vec<api::Completion> = batch
            .iter()
            .filter(|t| (t.task_index as usize) < tasks / 2)
            .map(|t| api::Completion {
                run_id: t.run_id,
                step_slug: &t.step_slug,
                task_index: t.task_index,
                output: &output,
            })
            .collect();
        if !done.is_empty() {
            api::complete_tasks(pool, &done).await?;
        }
    }
    Ok(run)
}

async fn connections(pool: &PgPool) -> Result<(i64, i64), BenchError> {
    Ok(sqlx::query_as(
        "select count(*), count(*) filter (where application_name = $2)
           from pg_stat_activity where application_name in ($1, $2)",
    )
    .bind(pgflow_dashboard::APPLICATION_NAME)
    .bind(pgflow_dashboard::LISTEN_APPLICATION_NAME)
    .fetch_one(pool)
    .await?)
}

fn server_ms(response: &reqwest::Response) -> Result<f64, BenchError> {
    let timing = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| err("no Server-Timing header"))?;
    timing
        .split("dur=")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err(format!("unreadable Server-Timing {timing:?}")))
}

/// Runs the dashboard workload against `database_url`, or a throwaway
/// durable cluster.
pub async fn bench(
    database_url: Option<&str>,
    args: &DashboardArgs,
    self_cmd: &SelfCommand,
    say: &dyn Fn(&str),
) -> Result<DashboardReport, BenchError> {
    let mut _cluster = None;
    let url = match database_url {
        Some(url) => url.to_owned(),
        None => {
            say("starting a throwaway PostgreSQL cluster with durable settings ...");
            let cluster = tokio::task::spawn_blocking(|| {
                TempCluster::start_with(crate::durable_cluster_options())
            })
            .await??;
            cluster.stop_when_process_exits()?;
            let url = cluster.url("postgres");
            _cluster = Some(cluster);
            url
        }
    };
    pgflow::db::install::install(&url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(PgConnectOptions::from_str(&url)?.application_name("pgflow-bench"))
        .await?;
    say(&format!(
        "dashboard: a {}-task map run, half done ...",
        args.tasks
    ));
    let run = half_done_map(&pool, args.tasks).await?;

    let mut child = Command::new(&self_cmd.program);
    child
        .args(&self_cmd.prefix)
        .arg("dashboard-server")
        .env(crate::worker::URL_ENV, &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = child.spawn()?;
    let pid = child.id().ok_or_else(|| err("dashboard process exited"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("LISTENING ") {
                return Ok(Some(addr.to_owned()));
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await
    .map_err(|_| err("dashboard not listening within 60 s"))??
    .ok_or_else(|| err("dashboard exited before listening"))?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    say(&format!(
        "dashboard: rendering the run page {} times ...",
        args.requests
    ));
    let page = format!("{base}/runs/{run}");
    let mut page_ms = Vec::new();
    let mut json_ms = Vec::new();
    let mut page_bytes = 0;
    for _ in 0..args.requests {
        let response = http.get(&page).send().await.map_err(err)?;
        if !response.status().is_success() {
            return Err(err(format!("GET {page}: {}", response.status())));
        }
        page_ms.push(server_ms(&response)?);
        page_bytes = response.bytes().await.map_err(err)?.len();
        let response = http
            .get(format!("{base}/api/runs/{run}"))
            .send()
            .await
            .map_err(err)?;
        json_ms.push(server_ms(&response)?);
    }
    page_ms.sort_by(f64::total_cmp);
    json_ms.sort_by(f64::total_cmp);

    say(&format!(
        "dashboard: {} live pages open, {} s idle ...",
        args.clients, args.idle_secs
    ));
    let (without, _) = connections(&pool).await?;
    let mut streams = Vec::new();
    for _ in 0..args.clients {
        let response = http
            .get(format!("{base}/events?run={run}"))
            .send()
            .await
            .map_err(err)?;
        let mut stream = response.bytes_stream();
        // The first event says the stream is subscribed.
        stream
            .next()
            .await
            .ok_or_else(|| err("live stream closed"))?
            .map_err(err)?;
        streams.push(stream);
    }
    let cpu_before = procs::cpu_time(pid).ok_or_else(|| err("cannot read the dashboard's CPU"))?;
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let cpu_after = procs::cpu_time(pid).ok_or_else(|| err("cannot read the dashboard's CPU"))?;
    let (with, listen) = connections(&pool).await?;
    drop(streams);
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    pool.close().await;

    Ok(DashboardReport {
        tasks: args.tasks,
        run_page_p50_ms: workloads::percentile(&page_ms, 50.0),
        run_page_p95_ms: workloads::percentile(&page_ms, 95.0),
        run_page_max_ms: page_ms.last().copied().unwrap_or(0.0),
        run_json_p50_ms: workloads::percentile(&json_ms, 50.0),
        run_page_bytes: page_bytes,
        clients: args.clients,
        connections_without_pages: without,
        connections_with_pages: with,
        listen_connections: listen,
        idle_secs: args.idle_secs,
        idle_cpu_percent: (cpu_after - cpu_before).as_secs_f64() / args.idle_secs as f64 * 100.0,
    })
}
