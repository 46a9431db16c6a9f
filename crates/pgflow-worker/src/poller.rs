//! The per-flow poll loop: read messages, claim tasks, spawn executions with
//! bounded concurrency, and drain in-flight tasks on shutdown.

use std::sync::Arc;
use std::time::Duration;

use pgflow_db::api;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Backoff, WorkerConfig};
use crate::executor::Executor;

/// Sleeps for `delay` unless `stop` fires first; true when stopped.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// Polls one flow's queue until `stop` fires, then waits for in-flight tasks
/// (or aborts them once `exec.hard_stop` fires).
pub(crate) async fn poll_loop(exec: Arc<Executor>, cfg: WorkerConfig, stop: CancellationToken) {
    let slug = exec.flow.flow.slug().to_string();
    let sem = Arc::new(Semaphore::new(cfg.max_concurrent.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut backoff = Backoff::new(cfg.max_backoff);
    loop {
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                error!(error = %e, "task execution ended abnormally");
            }
        }
        // Read only as many messages as there are free slots, so no claimed
        // task waits behind others, and read again as soon as one slot frees.
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            permit = sem.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let mut permits = vec![first];
        while permits.len() < cfg.batch_size.max(1) {
            match sem.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let read = tokio::select! {
            biased;
            // Dropping an in-flight read is safe: messages it may have read
            // become visible again after the visibility timeout.
            _ = stop.cancelled() => break,
            r = api::read_with_poll(
                &exec.pool,
                &slug,
                cfg.visibility_timeout,
                permits.len() as i32,
                cfg.max_poll_seconds,
                cfg.poll_interval_ms,
            ) => r,
        };
        let messages = match read {
            Ok(m) => m,
            Err(e) => {
                drop(permits);
                let delay = backoff.next_delay();
                warn!(flow = %slug, error = %e, retry_in_ms = delay.as_millis() as u64, "reading the queue failed");
                if sleep_or_stop(&stop, delay).await {
                    break;
                }
                continue;
            }
        };
        if messages.is_empty() {
            backoff.reset();
            continue;
        }
        let msg_ids: Vec<i64> = messages.iter().map(|m| m.msg_id).collect();
        // start_tasks is not raced against `stop`: once it commits, its tasks
        // are ours and must run (or be recovered by the sweeper).
        let claimed = match api::start_tasks(&exec.pool, &slug, &msg_ids, exec.worker_id).await {
            Ok(c) => c,
            Err(e) => {
                drop(permits);
                let delay = backoff.next_delay();
                warn!(flow = %slug, error = %e, retry_in_ms = delay.as_millis() as u64, "start_tasks failed");
                if sleep_or_stop(&stop, delay).await {
                    break;
                }
                continue;
            }
        };
        backoff.reset();
        for task in claimed {
            let Some(permit) = permits.pop() else {
                // start_tasks never returns more rows than message ids; if it
                // did, running the extra task is still better than losing it.
                warn!(flow = %slug, "start_tasks returned more tasks than messages read");
                let exec = exec.clone();
                tasks.spawn(exec.run(task));
                continue;
            };
            let exec = exec.clone();
            tasks.spawn(async move {
                exec.run(task).await;
                drop(permit);
            });
        }
    }

    info!(flow = %slug, in_flight = tasks.len(), "stopped reading; waiting for in-flight tasks");
    let drained = tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => true,
        _ = exec.hard_stop.cancelled() => false,
    };
    if !drained {
        warn!(flow = %slug, abandoned = tasks.len(), "shutdown grace expired; abandoning in-flight tasks");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}
