//! One `LISTEN pgflow_events` connection per [`Client`](crate::Client),
//! fanned out to every [`RunHandle::wait`](crate::RunHandle::wait) in flight.
//!
//! The listener has its own connection built from the client's connect
//! options (or a separate listen URL), never one of the pool's slots: waits
//! that each held a pooled connection for their LISTEN starved the pool, so
//! the reads they were waiting to do timed out forever. The connection is
//! opened by the first waiter and closed again once nobody has waited for a
//! while, so a client that never waits never opens it.
//!
//! A pool in pooler mode (`pooler=transaction` in its URL, see
//! `pgflow_db::pool`) has no connection that could `LISTEN`: without a listen
//! URL the hub never connects and waits poll, which it logs once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};
use uuid::Uuid;

/// The channel the SQL core sends run and step events on.
pub(crate) const EVENTS_CHANNEL: &str = "pgflow_events";

/// How many wake-ups may queue per waiter before it lags (a lagging waiter
/// just re-reads its run, so this bounds memory, not correctness).
const CAPACITY: usize = 1024;

/// How long the listener stays connected with no waiter before closing.
const IDLE_CLOSE: Duration = Duration::from_secs(10);

/// Bounds of the pause between reconnection attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// What a waiter is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A `run:*` event for this run was committed.
    Run(Uuid),
    /// Events may have been missed (the listener just (re)connected): every
    /// waiter should re-read its run.
    All,
}

/// The shared listener of one client.
pub(crate) struct RunEvents {
    /// `None`: nothing to listen on (pooler mode without a listen URL).
    options: Option<PgConnectOptions>,
    state: Mutex<State>,
}

struct State {
    tx: broadcast::Sender<Wake>,
    /// Whether the listener task is alive. Only changed under the lock, so
    /// a subscriber either sees a running task or starts one.
    running: bool,
    /// The "waits poll" notice was logged (once per client).
    told_polling: bool,
}

impl std::fmt::Debug for RunEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("RunEvents")
            .field("waiters", &state.tx.receiver_count())
            .field("listening", &state.running)
            .finish_non_exhaustive()
    }
}

impl RunEvents {
    /// A hub that will listen with `options` (not connected yet), or never
    /// with `None`.
    pub(crate) fn new(options: Option<PgConnectOptions>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(CAPACITY);
        Arc::new(RunEvents {
            options,
            state: Mutex::new(State {
                tx,
                running: false,
                told_polling: false,
            }),
        })
    }

    /// Subscribes to wake-ups, starting the listener if it is not running.
    /// Subscribe before the first read of the run: an event committed after
    /// the subscription is delivered, and one committed before the listener
    /// was listening is covered by the [`Wake::All`] sent once it is.
    pub(crate) fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<Wake> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = state.tx.subscribe();
        match &self.options {
            Some(options) if !state.running => {
                state.running = true;
                tokio::spawn(listen_loop(Arc::clone(self), options.clone()));
            }
            Some(_) => {}
            None if !state.told_polling => {
                state.told_polling = true;
                info!(
                    "pooler mode and no listen URL: not listening for run events; waits poll every second"
                );
            }
            None => {}
        }
        rx
    }

    fn send(&self, wake: Wake) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // An error only means nobody is subscribed right now.
        let _ = state.tx.send(wake);
    }

    /// Marks the listener stopped if nobody waits; true when it should exit.
    fn stop_if_idle(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.tx.receiver_count() == 0 {
            state.running = false;
            true
        } else {
            false
        }
    }
}

/// Listens until no waiter is left, reconnecting with backoff. Waiters poll
/// on their own meanwhile, so a listener that cannot connect (a pooler in
/// transaction mode refusing the session, a server that is down) only costs
/// latency.
async fn listen_loop(hub: Arc<RunEvents>, options: PgConnectOptions) {
    let mut delay = RECONNECT_MIN;
    // Warn about the first failure of a streak only: a listener that cannot
    // connect (a pooler refusing LISTEN, a server that is down) retries for
    // as long as anyone waits, and waits poll meanwhile.
    let mut failing = false;
    loop {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options.clone());
        let connected = async {
            let mut l = PgListener::connect_with(&own).await?;
            l.listen(EVENTS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match connected {
            Ok(mut listener) => {
                debug!(channel = EVENTS_CHANNEL, "listening for run events");
                delay = RECONNECT_MIN;
                failing = false;
                hub.send(Wake::All);
                if relay(&hub, &mut listener).await {
                    drop(listener);
                    own.close().await;
                    return;
                }
            }
            Err(e) if !failing => {
                failing = true;
                warn!(
                    error = %e,
                    "cannot listen for run events; waits poll every second until it can"
                );
            }
            Err(e) => debug!(
                error = %e,
                retry_in_ms = delay.as_millis() as u64,
                "still cannot listen for run events"
            ),
        }
        own.close().await;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
        if hub.stop_if_idle() {
            return;
        }
    }
}

/// Forwards notifications until the connection fails (false) or nobody has
/// waited for [`IDLE_CLOSE`] (true).
async fn relay(hub: &RunEvents, listener: &mut PgListener) -> bool {
    loop {
        let received = tokio::select! {
            r = listener.try_recv() => r,
            _ = tokio::time::sleep(IDLE_CLOSE) => {
                if hub.stop_if_idle() {
                    return true;
                }
                continue;
            }
        };
        match received {
            Ok(Some(n)) => {
                if let Some(run_id) = run_event(n.payload()) {
                    hub.send(Wake::Run(run_id));
                }
            }
            Ok(None) => {
                warn!("run event connection lost; reconnecting");
                return false;
            }
            Err(e) => {
                warn!(error = %e, "run event connection failed; reconnecting");
                return false;
            }
        }
    }
}

/// The run of a `run:*` event envelope (`{"topic":"pgflow:run:<id>",
/// "event":"run:completed",..}`); `None` for step events and anything else.
fn run_event(payload: &str) -> Option<Uuid> {
    let v: Value = serde_json::from_str(payload).ok()?;
    if !v.get("event")?.as_str()?.starts_with("run:") {
        return None;
    }
    v.get("topic")?
        .as_str()?
        .strip_prefix("pgflow:run:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_run_events_name_a_run() {
        let id = Uuid::new_v4();
        assert_eq!(
            run_event(&format!(
                r#"{{"topic":"pgflow:run:{id}","event":"run:completed","payload":{{}}}}"#
            )),
            Some(id)
        );
        assert_eq!(
            run_event(&format!(
                r#"{{"topic":"pgflow:run:{id}","event":"step:a:completed","payload":{{}}}}"#
            )),
            None
        );
        assert_eq!(run_event("not json"), None);
        assert_eq!(
            run_event(r#"{"topic":"pgflow:run:nope","event":"run:failed"}"#),
            None
        );
    }
}
