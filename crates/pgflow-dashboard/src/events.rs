//! Live events: ONE `LISTEN pgflow_events` connection per dashboard process,
//! fanned out to every server-sent-events client through a broadcast channel.
//!
//! A notification is reduced to ids and statuses ([`LiveEvent`]): pages treat
//! it as a hint and re-fetch their JSON, so nothing a page shows comes from an
//! event payload, and a lost or reordered notification costs nothing but a
//! late refresh. After the connection is lost and re-established the hub
//! sends a `resync` event, since notifications sent meanwhile are gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// Events kept for a slow client before it is told to resync.
const CHANNEL_CAPACITY: usize = 1024;

/// A run or step transition, ids and statuses only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// The event name, e.g. `run:completed`, `step:fetch:started`, or
    /// `resync` (refresh everything).
    pub event: String,
    /// The run it concerns.
    pub run_id: Option<Uuid>,
    /// Its flow, when the notification says.
    pub flow_slug: Option<String>,
    /// The step, for step events.
    pub step_slug: Option<String>,
    /// The new status, when the notification says.
    pub status: Option<String>,
}

impl LiveEvent {
    /// The event that tells pages to refresh whatever they show.
    pub fn resync() -> Self {
        LiveEvent {
            event: "resync".into(),
            run_id: None,
            flow_slug: None,
            step_slug: None,
            status: None,
        }
    }

    /// Reads a `pgflow_events` notification: `{"topic": "pgflow:run:<id>",
    /// "event": ..., "payload": {...}}`. Only ids and statuses are kept;
    /// `None` for a payload that is not such an envelope.
    pub fn parse(payload: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            topic: Option<String>,
            event: String,
            #[serde(default)]
            payload: Value,
        }
        let envelope: Envelope = serde_json::from_str(payload).ok()?;
        let text = |key: &str| {
            envelope
                .payload
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let run_id = text("run_id")
            .or_else(|| {
                envelope
                    .topic
                    .as_deref()
                    .and_then(|t| t.strip_prefix("pgflow:run:"))
                    .map(str::to_owned)
            })
            .and_then(|id| id.parse().ok());
        // Step events are named `step:<slug>:<status>`.
        let mut parts = envelope.event.splitn(3, ':');
        let from_name = match (parts.next(), parts.next(), parts.next()) {
            (Some("step"), Some(slug), Some(status)) => Some((slug.to_owned(), status.to_owned())),
            _ => None,
        };
        Some(LiveEvent {
            step_slug: text("step_slug").or_else(|| from_name.as_ref().map(|(s, _)| s.clone())),
            status: text("status").or_else(|| from_name.map(|(_, s)| s)),
            flow_slug: text("flow_slug"),
            run_id,
            event: envelope.event,
        })
    }
}

/// The fan-out point: one sender, one receiver per live page.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<LiveEvent>,
    listening: Arc<AtomicBool>,
    closed: watch::Sender<bool>,
    watched: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// Marks a run as watched by a live page for as long as it lives.
pub struct WatchGuard {
    run: Uuid,
    watched: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = watched.get_mut(&self.run) {
            *n -= 1;
            if *n == 0 {
                watched.remove(&self.run);
            }
        }
    }
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        EventHub {
            sender,
            listening: Arc::new(AtomicBool::new(false)),
            closed: watch::channel(false).0,
            watched: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Registers a live page watching `run` (see [`crate::progress`]).
    pub fn watch(&self, run: Uuid) -> WatchGuard {
        *self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(run)
            .or_insert(0) += 1;
        WatchGuard {
            run,
            watched: self.watched.clone(),
        }
    }

    /// Runs some live page is watching now.
    pub fn watched_runs(&self) -> Vec<Uuid> {
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// A new subscription (one per live page).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }

    /// Resolves once [`EventHub::close`] was called (ends live streams).
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Ends every live stream (at shutdown).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }

    /// Sends an event to every subscriber.
    pub fn publish(&self, event: LiveEvent) {
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }

    /// Live pages subscribed now.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// True while the `LISTEN` connection is established.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

/// Owns the `LISTEN pgflow_events` connection until `stop` turns true:
/// publishes every notification, reconnects with a backoff when the
/// connection fails, and publishes `resync` after each reconnection.
pub async fn run_listener(pool: PgPool, hub: EventHub, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        let connected = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            listener = pgflow_db::dashboard::listen_events(&pool) => listener,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(
                    "dashboard: cannot listen for events: {err}; retrying in {backoff:?}"
                );
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        hub.listening.store(true, Ordering::SeqCst);
        if !first {
            hub.publish(LiveEvent::resync());
        }
        first = false;
        backoff = Duration::from_millis(250);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    hub.listening.store(false, Ordering::SeqCst);
                    return;
                }
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if let Some(event) = LiveEvent::parse(notification.payload()) {
                            hub.publish(event);
                        }
                    }
                    // The connection was lost; the next call reconnects and
                    // re-listens, but what was sent meanwhile is gone.
                    Ok(None) => hub.publish(LiveEvent::resync()),
                    Err(err) => {
                        tracing::warn!("dashboard: event connection failed: {err}");
                        hub.listening.store(false, Ordering::SeqCst);
                        break;
                    }
                },
            }
        }
    }
    hub.listening.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_step_event_keeping_only_ids_and_status() {
        let id = Uuid::new_v4();
        let payload = format!(
            r#"{{"topic":"pgflow:run:{id}","event":"step:fetch:completed","payload":{{"run_id":"{id}","step_slug":"fetch","status":"completed","output":{{"secret":1}}}}}}"#
        );
        let event = LiveEvent::parse(&payload).unwrap();
        assert_eq!(event.run_id, Some(id));
        assert_eq!(event.step_slug.as_deref(), Some("fetch"));
        assert_eq!(event.status.as_deref(), Some("completed"));
        assert!(!serde_json::to_string(&event).unwrap().contains("secret"));
    }

    #[test]
    fn takes_the_run_and_step_from_topic_and_name_when_the_payload_is_bare() {
        let id = Uuid::new_v4();
        let payload = format!(r#"{{"topic":"pgflow:run:{id}","event":"step:b:failed"}}"#);
        let event = LiveEvent::parse(&payload).unwrap();
        assert_eq!(event.run_id, Some(id));
        assert_eq!(event.step_slug.as_deref(), Some("b"));
        assert_eq!(event.status.as_deref(), Some("failed"));
        assert_eq!(LiveEvent::parse("not json"), None);
    }
}
