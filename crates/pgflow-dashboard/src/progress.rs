//! Map progress for live pages. Completing one task of a map sends no event
//! (only step and run transitions do), so a page watching a running map
//! would sit still until the whole step finished. One ticker per dashboard
//! process (not per page) checks the runs that live pages watch, once a
//! second, with one query over their `step_states`, and publishes a
//! `run:progress` hint for each run whose steps changed. It costs nothing
//! when no page watches a started run.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::events::{EventHub, LiveEvent};

/// How often watched runs are checked.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub async fn run_ticker(pool: PgPool, hub: EventHub, mut stop: watch::Receiver<bool>) {
    let mut last: HashMap<Uuid, String> = HashMap::new();
    let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = interval.tick() => {}
        }
        let runs = hub.watched_runs();
        if runs.is_empty() {
            last.clear();
            continue;
        }
        let fingerprints = match pgflow_db::dashboard::run_fingerprints(&pool, &runs).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!("dashboard: checking run progress: {err}");
                continue;
            }
        };
        let mut next = HashMap::with_capacity(fingerprints.len());
        for (run, fingerprint) in fingerprints {
            // A run seen for the first time is announced too: it may have
            // moved between the page's render and its stream's start.
            if last.get(&run) != Some(&fingerprint) {
                hub.publish(LiveEvent {
                    event: "run:progress".into(),
                    run_id: Some(run),
                    flow_slug: None,
                    step_slug: None,
                    status: None,
                });
            }
            next.insert(run, fingerprint);
        }
        last = next;
    }
}
