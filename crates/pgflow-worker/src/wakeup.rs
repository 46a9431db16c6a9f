//! Wake-ups for idle pollers: `LISTEN pgflow_tasks` on a dedicated
//! connection, plus local timers for work no notification announces.
//!
//! The SQL core sends `pg_notify('pgflow_tasks', <flow slug>)` whenever it
//! queues tasks (starting steps, requeueing stalled tasks, retrying a run).
//! One listener per worker process turns each notification into a wake-up of
//! that flow's poller. Delayed messages are not announced when they become
//! visible, so the poller also keeps timers: a retry scheduled by this worker
//! (`fail_task` pushes the message out by the backoff), a step start delay
//! seen after a notification, and the periodic fallback read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::timing::{self, sleep_or_stop};

/// The channel the SQL core notifies on when tasks are queued.
pub(crate) const TASKS_CHANNEL: &str = "pgflow_tasks";

/// The wake-up state of one flow's poller.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    notify: Notify,
    timers: Mutex<BTreeSet<Instant>>,
}

impl Wakeup {
    /// Wakes the poller now (or at its next wait, if it is busy: one pending
    /// wake-up is remembered).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Wakes the poller at `at` (if it is idle then).
    pub(crate) fn wake_at(&self, at: Instant) {
        self.timers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(at);
    }

    /// Waits until woken, until the earliest timer or `fallback`, whichever
    /// comes first. Returns true when woken by a notification.
    pub(crate) async fn wait(&self, fallback: Duration) -> bool {
        let deadline = {
            let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            // Drop timers that already fired (the read that follows covers them).
            timers.retain(|t| *t > now);
            let fallback = now + fallback;
            timers
                .first()
                .copied()
                .map_or(fallback, |t| t.min(fallback))
        };
        tokio::select! {
            _ = self.notify.notified() => true,
            _ = tokio::time::sleep_until(deadline) => false,
        }
    }
}

/// Per-flow wake-ups, keyed by flow slug (the notification payload).
pub(crate) type Wakeups = Arc<HashMap<String, Arc<Wakeup>>>;

/// Listens on [`TASKS_CHANNEL`] until `stop` fires and wakes the poller of
/// the flow each notification names. Uses its own connection (with
/// `options`: the pool's, or a direct address past a pooler), so it never
/// holds one of the pool's slots. After every
/// (re)connection it wakes every poller, since notifications sent while it
/// was disconnected are lost.
pub(crate) async fn listen_loop(
    options: PgConnectOptions,
    wakeups: Wakeups,
    max_backoff: Duration,
    stop: CancellationToken,
) {
    let mut backoff = timing::backoff(max_backoff);
    // Warn about the first failure of a streak only: retries go on for the
    // worker's lifetime and the pollers' fallback reads cover meanwhile.
    let mut failing = false;
    loop {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.clone());
        let connected = tokio::select! {
            _ = stop.cancelled() => return,
            l = async {
                let mut l = PgListener::connect_with(&own).await?;
                l.listen(TASKS_CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            } => l,
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                let delay = backoff.next_delay();
                if failing {
                    debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "still cannot listen for task notifications");
                } else {
                    failing = true;
                    warn!(error = %e, "cannot listen for task notifications; pollers fall back to polling until it can");
                }
                if sleep_or_stop(&stop, delay).await {
                    return;
                }
                continue;
            }
        };
        debug!(channel = TASKS_CHANNEL, "listening for task notifications");
        backoff.reset();
        failing = false;
        for w in wakeups.values() {
            w.wake();
        }
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                r = listener.try_recv() => r,
            };
            match received {
                Ok(Some(n)) => {
                    if let Some(w) = wakeups.get(n.payload()) {
                        w.wake();
                    }
                }
                Ok(None) => {
                    warn!("task notification connection lost; reconnecting");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "task notification connection failed; reconnecting");
                    break;
                }
            }
        }
        // Reconnect from scratch (a fresh connection and LISTEN), after a
        // short pause so a server that is down is not hammered.
        drop(listener);
        own.close().await;
        if sleep_or_stop(&stop, backoff.next_delay()).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wait_ends_at_wake_timer_or_fallback() {
        let w = Wakeup::default();
        w.wake();
        assert!(
            w.wait(Duration::from_secs(5)).await,
            "a pending wake-up is kept"
        );

        let start = Instant::now();
        w.wake_at(start + Duration::from_secs(2));
        assert!(!w.wait(Duration::from_secs(5)).await);
        assert_eq!(start.elapsed().as_secs(), 2);

        let start = Instant::now();
        assert!(!w.wait(Duration::from_secs(5)).await);
        assert_eq!(start.elapsed().as_secs(), 5, "fired timers are dropped");
    }
}
