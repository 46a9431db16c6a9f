//! The per-flow poll loop: read messages, claim tasks, spawn executions with
//! bounded concurrency, and drain in-flight tasks on shutdown.

use std::sync::Arc;
use std::time::Duration;

use pgflow_db::api::{self, ApiError, ClaimedTask};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::config::{whole_millis, whole_secs, WorkerConfig};
use crate::executor::{CompletionReceiver, Executor};
use crate::timing::{self, sleep_or_stop, Backoff, WAKE_MARGIN};
use crate::wakeup::Wakeup;

/// Polls one flow's queue until `stop` fires, then waits for in-flight tasks
/// (or aborts them once `exec.hard_stop` fires) and flushes buffered results.
///
/// With `cfg.listen` the loop reads without waiting (`claim_tasks`: one
/// statement claims the batch, retried with the same claim id after a
/// transient error so a lost reply strands nothing) and, when nothing is claimable, sleeps
/// until `wakeup` fires (a `pgflow_tasks` notification for this flow, a local
/// timer) or `max_poll_seconds` pass. Without it, it long-polls with
/// `read_with_poll` and then calls `start_worker_tasks`.
pub(crate) async fn poll_loop(
    exec: Arc<Executor>,
    cfg: WorkerConfig,
    stop: CancellationToken,
    wakeup: Option<Arc<Wakeup>>,
    completions: Option<CompletionReceiver>,
) {
    let slug = exec.flow.flow.slug().to_string();
    let sem = Arc::new(Semaphore::new(cfg.max_concurrent.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut backoff = timing::backoff(cfg.max_backoff);
    // The fallback read happens at least every second.
    let fallback = cfg.max_poll.max(Duration::from_secs(1));
    let start_delays = exec.flow.start_delays();
    let tasks_done = CancellationToken::new();
    let reporter = completions.map(|rx| {
        tokio::spawn(exec.clone().report_loop(
            rx,
            cfg.completion_batch_size.max(1),
            tasks_done.clone(),
        ))
    });
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
        let claimed = match &wakeup {
            Some(wakeup) => {
                let Some(claimed) =
                    claim(&exec, &cfg, &slug, permits.len(), &mut backoff, &stop).await
                else {
                    break;
                };
                if matches!(&claimed, Ok(c) if c.is_empty()) {
                    drop(permits);
                    backoff.reset();
                    let notified = tokio::select! {
                        biased;
                        _ = stop.cancelled() => break,
                        n = wakeup.wait(fallback) => n,
                    };
                    if notified {
                        // A notification may announce a step whose first
                        // delivery is delayed: look again once it is due.
                        let now = tokio::time::Instant::now();
                        for d in &start_delays {
                            wakeup.wake_at(now + *d + WAKE_MARGIN);
                        }
                    }
                    continue;
                }
                claimed
            }
            None => match read_then_start(&exec, &cfg, &slug, &permits, &stop).await {
                ReadOutcome::Stopped => break,
                ReadOutcome::Empty => {
                    backoff.reset();
                    continue;
                }
                ReadOutcome::Claimed(c) => c,
            },
        };
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                drop(permits);
                let delay = backoff.next_delay();
                warn!(flow = %slug, error = %e, retry_in_ms = delay.as_millis() as u64, "claiming tasks failed");
                if sleep_or_stop(&stop, delay).await {
                    break;
                }
                continue;
            }
        };
        backoff.reset();
        for task in claimed {
            let Some(permit) = permits.pop() else {
                // A claim never returns more tasks than requested; if it
                // did, running the extra task is still better than losing it.
                warn!(flow = %slug, "the claim returned more tasks than requested");
                let exec = exec.clone();
                tasks.spawn(exec.run(task));
                continue;
            };
            let exec = exec.clone();
            tasks.spawn(async move {
                // The slot frees once the outcome is reported or handed to
                // the result buffer.
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
    // Every task has reported or buffered its result: flush the buffer.
    tasks_done.cancel();
    if let Some(reporter) = reporter {
        if let Err(e) = reporter.await {
            error!(error = %e, "result reporter ended abnormally");
        }
    }
}

/// The listening path's claim: `claim_tasks` with a new claim id, retried
/// with the same id after transient errors (with `backoff`) until it succeeds,
/// fails for good, or `stop` fires (then `None`).
///
/// The retry matters when the reply was lost after the claim committed (a
/// connection cut at the wrong moment): the retried call then reads nothing
/// and returns the tasks this claim started, which would otherwise sit
/// `started` by a live worker until the stall sweep (step timeout + 30 s).
/// A call is never abandoned mid-flight for `stop` for the same reason; only
/// the wait between attempts is.
async fn claim(
    exec: &Executor,
    cfg: &WorkerConfig,
    slug: &str,
    qty: usize,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> Option<Result<Vec<ClaimedTask>, ApiError>> {
    let claim_id = Uuid::new_v4();
    let mut attempt: u32 = 1;
    let started = std::time::Instant::now();
    loop {
        let claimed = api::claim_tasks(
            &exec.pool,
            slug,
            exec.worker_id,
            claim_id,
            qty as i32,
            whole_secs(cfg.visibility_timeout),
        )
        .await;
        match claimed {
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                warn!(
                    flow = %slug,
                    %claim_id,
                    attempt,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "claiming tasks failed; retrying the same claim"
                );
                if sleep_or_stop(stop, delay).await {
                    warn!(
                        flow = %slug,
                        %claim_id,
                        "stopping with a claim that may have committed; its tasks, if any, \
                         are left to the stall sweep"
                    );
                    return None;
                }
                attempt += 1;
            }
            other => {
                if let (Some(m), Ok(tasks)) = (&exec.metrics, &other) {
                    m.claimed(slug, tasks.len(), started.elapsed());
                }
                if attempt > 1 {
                    if let Ok(tasks) = &other {
                        info!(flow = %slug, %claim_id, attempt, tasks = tasks.len(), "claim succeeded on retry");
                    }
                }
                return Some(other);
            }
        }
    }
}

enum ReadOutcome {
    Stopped,
    Empty,
    Claimed(Result<Vec<ClaimedTask>, ApiError>),
}

/// The long-polling path (`listen` off): `read_with_poll`, then
/// `start_worker_tasks` (`start_tasks` plus each task's settings).
async fn read_then_start(
    exec: &Executor,
    cfg: &WorkerConfig,
    slug: &str,
    permits: &[OwnedSemaphorePermit],
    stop: &CancellationToken,
) -> ReadOutcome {
    let read = tokio::select! {
        biased;
        // Dropping an in-flight read is safe: messages it may have read
        // become visible again after the visibility timeout.
        _ = stop.cancelled() => return ReadOutcome::Stopped,
        r = api::read_with_poll(
            &exec.pool,
            slug,
            whole_secs(cfg.visibility_timeout),
            permits.len() as i32,
            whole_secs(cfg.max_poll),
            whole_millis(cfg.poll_interval),
        ) => r,
    };
    let messages = match read {
        Ok(m) if m.is_empty() => return ReadOutcome::Empty,
        Ok(m) => m,
        Err(e) => return ReadOutcome::Claimed(Err(e)),
    };
    let msg_ids: Vec<i64> = messages.iter().map(|m| m.msg_id).collect();
    // start_worker_tasks is not raced against `stop`: once it commits, its tasks
    // are ours and must run (or be recovered by the sweeper). Unlike the
    // listening path's claim_tasks, it cannot be replayed: if its reply is
    // lost, its tasks wait for the stall sweep (step timeout + 30 s).
    let started = std::time::Instant::now();
    let claimed = api::start_worker_tasks(&exec.pool, slug, &msg_ids, exec.worker_id).await;
    if let (Some(m), Ok(tasks)) = (&exec.metrics, &claimed) {
        m.claimed(slug, tasks.len(), started.elapsed());
    }
    ReadOutcome::Claimed(claimed)
}
