//! Shared pieces of the worker end-to-end tests: spawning `test_worker`
//! processes and waiting on database conditions with deadlines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::PgPool;
use uuid::Uuid;

/// A running `test_worker` process; killed (SIGKILL) when dropped.
pub struct WorkerProc {
    child: Child,
    /// The worker ids it registered (one per flow).
    pub worker_ids: Vec<Uuid>,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
}

impl WorkerProc {
    /// Spawns `test_worker --url <url> <args>` and waits for its READY line.
    pub fn spawn(url: &str, args: &[&str]) -> WorkerProc {
        let log = std::env::temp_dir().join(format!("pgflow-test-worker-{}.log", Uuid::new_v4()));
        let log_file = std::fs::File::create(&log).expect("create worker log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_test_worker"))
            .arg("--url")
            .arg(url)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("TEST_WORKER_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn test_worker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let _ = reader.read_to_end(&mut Vec::new());
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let mut proc = WorkerProc {
            child,
            worker_ids: Vec::new(),
            log,
        };
        let Some(ids) = line.trim().strip_prefix("READY") else {
            let _ = proc.child.kill();
            panic!(
                "test_worker did not become ready (got {line:?}); log:\n{}",
                proc.log_text()
            );
        };
        proc.worker_ids = ids
            .split_whitespace()
            .map(|s| s.parse().expect("uuid"))
            .collect();
        proc
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn sigterm(&self) {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM");
    }

    /// Sends SIGKILL and reaps the process.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit, panicking after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not exit within {timeout:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The worker's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!(
                "---- last log lines of worker {:?} ({}) ----",
                self.worker_ids,
                self.log.display()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        } else if std::env::var_os("PGFLOW_TEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Polls `check` every 100 ms until it returns true; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An i64 scalar query, or -1 when the database is unreachable (so waits
/// keep polling through outages).
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// The run's status, or "" when unreadable.
pub async fn run_status(pool: &PgPool, run_id: Uuid) -> String {
    sqlx::query_scalar::<_, String>("select status from pgflow.runs where run_id = $1")
        .bind(run_id)
        .fetch_one(pool)
        .await
        .unwrap_or_default()
}

/// Waits until the run is terminal and returns its status.
pub async fn wait_terminal(pool: &PgPool, run_id: Uuid, timeout: Duration) -> String {
    let mut status = String::new();
    wait_until(&format!("run {run_id} to finish"), timeout, || {
        let pool = pool.clone();
        async move {
            let s = run_status(&pool, run_id).await;
            matches!(s.as_str(), "completed" | "failed" | "cancelled")
        }
    })
    .await;
    status.push_str(&run_status(pool, run_id).await);
    status
}
