//! Worker processes (the harness's own binary in `worker` mode) and CPU
//! accounting from `/proc/<pid>/stat`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{worker, BenchError, WorkerArgs};

/// How to start a worker process: a program and the arguments that lead to
/// its `worker` subcommand (e.g. `pgflow-bench` + `[]`, or `pgflow` +
/// `["bench"]`). `worker` and its flags are appended.
#[derive(Debug, Clone)]
pub struct SelfCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before `worker`.
    pub prefix: Vec<OsString>,
}

impl SelfCommand {
    /// The running executable with these arguments before `worker`.
    pub fn current(prefix: &[&str]) -> Result<Self, BenchError> {
        Ok(SelfCommand {
            program: std::env::current_exe()?,
            prefix: prefix.iter().map(OsString::from).collect(),
        })
    }
}

/// Running worker processes.
pub struct Workers {
    children: Vec<Child>,
}

impl Workers {
    /// Starts `n` worker processes and waits until each has registered.
    pub async fn start(
        cmd: &SelfCommand,
        url: &str,
        n: usize,
        args: &WorkerArgs,
    ) -> Result<Self, BenchError> {
        let mut workers = Workers {
            children: Vec::new(),
        };
        for _ in 0..n {
            let mut c = Command::new(&cmd.program);
            c.args(&cmd.prefix).arg("worker");
            if args.no_listen {
                c.arg("--no-listen");
            }
            if args.no_batch {
                c.arg("--no-batch");
            }
            if let Some(n) = args.batch_size {
                c.arg("--batch-size").arg(n.to_string());
            }
            if let Some(n) = args.max_concurrent {
                c.arg("--max-concurrent").arg(n.to_string());
            }
            c.env(worker::URL_ENV, url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = c.spawn()?;
            let stdout = child.stdout.take().expect("stdout is piped");
            workers.children.push(child);
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(line) = lines.next_line().await? {
                    if line.trim() == "READY" {
                        return Ok(true);
                    }
                }
                Ok::<_, std::io::Error>(false)
            })
            .await;
            match ready {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Err(BenchError::WorkerStart("exited before READY".into())),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(BenchError::WorkerStart("not ready within 60 s".to_string())),
            }
        }
        Ok(workers)
    }

    /// The OS process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Closes every worker's stdin (their signal to shut down gracefully)
    /// and waits for them; kills any still running after 30 s.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        let mut failures = Vec::new();
        for child in &mut self.children {
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => failures.push(format!("worker exited with {status}")),
                Ok(Err(e)) => failures.push(e.to_string()),
                Err(_) => {
                    let _ = child.kill().await;
                    failures.push("worker did not stop within 30 s; killed".to_string());
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(BenchError::WorkerStop(failures.join("; ")))
        }
    }
}

/// CPU time (user + system) of a process so far, or `None` when it is gone
/// or not readable.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are
    // plain. utime and stime are fields 14 and 15, in clock ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as u64;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

/// Total CPU time of the processes that can still be read.
pub fn total_cpu(pids: &[u32]) -> Duration {
    pids.iter().filter_map(|p| cpu_time(*p)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        // Burn CPU until the kernel has charged this process at least one
        // tick. How long that takes depends on what else the machine runs,
        // so wait for the reading, not for a wall-clock time; the deadline
        // only guards against a reader that never sees the time at all.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut x = 0u64;
        loop {
            for _ in 0..1_000_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            let t = cpu_time(std::process::id()).expect("own /proc entry");
            if t > Duration::ZERO {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cpu_time stayed zero after 60 s of spinning ({x} iterations)"
            );
        }
    }
}
