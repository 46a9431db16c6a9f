//! The results: a serializable report (`--json`) and the aligned table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::db::{ServerFacts, TopStatement};

/// Everything one harness run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server was measured.
    pub server: String,
    /// Machine and server facts.
    pub machine: Machine,
    /// Worker processes.
    pub workers: usize,
    /// The worker settings that matter here.
    pub worker_config: WorkerSettings,
    /// Single-row UPDATE commits/s with `workers` clients.
    pub reference_tps: f64,
    /// Milliseconds per reference commit per client (`workers / reference_tps`).
    pub reference_commit_ms: f64,
    pub map: MapResult,
    pub chain: ChainResult,
    pub latency: LatencyResult,
    pub idle: IdleResult,
    /// Top statements per workload (`--profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<PhaseProfile>>,
}

/// Machine and server facts.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU cores available to this process.
    pub cores: usize,
    #[serde(flatten)]
    pub server: ServerFacts,
}

/// Worker settings in effect.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerSettings {
    pub listen: bool,
    pub completion_batch_size: usize,
    pub batch_size: usize,
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MapResult {
    /// Tasks in the run (map elements + the fan-in).
    pub tasks: usize,
    pub secs: f64,
    pub tasks_per_s: f64,
    /// `tasks_per_s / reference_tps`.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainResult {
    pub runs: usize,
    pub steps: usize,
    pub secs: f64,
    pub steps_per_s: f64,
    pub runs_per_s: f64,
    /// `steps_per_s / reference_tps`.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub runs: usize,
    pub hops: usize,
    pub hop_p50_ms: f64,
    pub hop_p95_ms: f64,
    pub hop_p99_ms: f64,
    pub hop_max_ms: f64,
    pub run_p50_ms: f64,
    pub run_p95_ms: f64,
    /// `hop_p50_ms / reference_commit_ms`.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub secs: f64,
    pub queries_per_s_per_worker: f64,
    /// How queries were counted.
    pub query_source: String,
    /// CPU of one worker process, % of one core.
    pub cpu_percent: f64,
    /// CPU of one worker's server processes, % of one core (server on this
    /// machine only).
    pub server_cpu_percent: Option<f64>,
    /// `queries_per_s_per_worker / reference_tps`.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseProfile {
    pub phase: String,
    pub statements: Vec<TopStatement>,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let w = &self.worker_config;
        let mut out = String::new();
        let _ = writeln!(out, "server:  {}", self.server);
        let _ = writeln!(
            out,
            "machine: {} cores, PostgreSQL {}, synchronous_commit={}, fsync={}, shared_buffers={}, max_connections={}",
            m.cores, m.server.postgres_version, m.server.synchronous_commit, m.server.fsync,
            m.server.shared_buffers, m.server.max_connections
        );
        let _ = writeln!(
            out,
            "workers: {} processes; per flow: listen={}, completion_batch_size={}, batch_size={}, max_concurrent={}",
            self.workers, w.listen, w.completion_batch_size, w.batch_size, w.max_concurrent
        );
        let _ = writeln!(out);
        let rows: Vec<[String; 5]> = vec![
            [
                "reference".into(),
                format!("single-row UPDATE commits/s ({} clients)", self.workers),
                format!("{:.0}", self.reference_tps),
                "1.00x".into(),
                String::new(),
            ],
            [
                "map".into(),
                format!(
                    "tasks/s ({} tasks in {:.2} s)",
                    self.map.tasks, self.map.secs
                ),
                format!("{:.0}", self.map.tasks_per_s),
                format!("{:.2}x", self.map.ratio),
                format!(">= 1.5x  {}", verdict(self.map.ratio >= 1.5)),
            ],
            [
                "chain".into(),
                format!(
                    "steps/s ({} runs x 5 steps in {:.2} s)",
                    self.chain.runs, self.chain.secs
                ),
                format!("{:.0}", self.chain.steps_per_s),
                format!("{:.2}x", self.chain.ratio),
                format!(">= 0.5x  {}", verdict(self.chain.ratio >= 0.5)),
            ],
            [
                "chain".into(),
                "runs/s".into(),
                format!("{:.0}", self.chain.runs_per_s),
                format!("{:.2}x", self.chain.runs_per_s / self.reference_tps),
                String::new(),
            ],
            [
                "latency".into(),
                format!(
                    "hop p50 ms ({} hops, {} runs)",
                    self.latency.hops, self.latency.runs
                ),
                format!("{:.2}", self.latency.hop_p50_ms),
                format!("{:.2}x commit", self.latency.ratio),
                format!("<= 5 ms  {}", verdict(self.latency.hop_p50_ms <= 5.0)),
            ],
            [
                "latency".into(),
                "hop p95 ms".into(),
                format!("{:.2}", self.latency.hop_p95_ms),
                format!(
                    "{:.2}x commit",
                    self.latency.hop_p95_ms / self.reference_commit_ms
                ),
                String::new(),
            ],
            [
                "latency".into(),
                "hop p99 ms".into(),
                format!("{:.2}", self.latency.hop_p99_ms),
                format!(
                    "{:.2}x commit",
                    self.latency.hop_p99_ms / self.reference_commit_ms
                ),
                format!("<= 25 ms {}", verdict(self.latency.hop_p99_ms <= 25.0)),
            ],
            [
                "latency".into(),
                "run p50 ms (5 steps)".into(),
                format!("{:.2}", self.latency.run_p50_ms),
                format!(
                    "{:.2}x commit",
                    self.latency.run_p50_ms / self.reference_commit_ms
                ),
                String::new(),
            ],
            [
                "idle".into(),
                format!("queries/s per worker ({:.0} s)", self.idle.secs),
                format!("{:.2}", self.idle.queries_per_s_per_worker),
                format!("{:.5}x", self.idle.ratio),
                format!(
                    "<= 2     {}",
                    verdict(self.idle.queries_per_s_per_worker <= 2.0)
                ),
            ],
            [
                "idle".into(),
                "worker CPU % of a core".into(),
                format!("{:.2}", self.idle.cpu_percent),
                String::new(),
                format!("~0       {}", verdict(self.idle.cpu_percent < 0.5)),
            ],
        ];
        let mut rows = rows;
        if let Some(server) = self.idle.server_cpu_percent {
            rows.push([
                "idle".into(),
                "its server processes' CPU %".into(),
                format!("{server:.2}"),
                String::new(),
                String::new(),
            ]);
        }
        let header = [
            "workload".to_string(),
            "figure".into(),
            "value".into(),
            "vs reference".into(),
            "target".into(),
        ];
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(rows.iter()) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |row: &[String; 5]| {
            format!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            )
            .trim_end()
            .to_string()
        };
        let _ = writeln!(out, "{}", line(&header));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "idle queries counted with {}", self.idle.query_source);
        let _ = writeln!(
            out,
            "latency: hop = parent step_states.completed_at -> child step_tasks.started_at; \
             run = runs.started_at -> completed_at (database clock, transaction start times)"
        );
        if let Some(profile) = &self.profile {
            for phase in profile {
                let _ = writeln!(
                    out,
                    "\nprofile: {} (top statements by server time)",
                    phase.phase
                );
                for s in &phase.statements {
                    let _ = writeln!(
                        out,
                        "  {:>8} calls {:>10.1} ms total {:>8.3} ms each  {}",
                        s.calls, s.total_ms, s.mean_ms, s.query
                    );
                }
            }
        }
        out
    }
}
