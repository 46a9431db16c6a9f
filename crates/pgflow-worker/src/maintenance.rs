//! Background services: the heartbeat (one per registered worker row) and
//! the fleet-wide stalled-task sweeper.

use std::time::Duration;

use pgflow_db::api;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::timing::sleep_or_stop;

/// Advisory lock key shared by every pgflow-rs worker: whoever takes it runs
/// that round's `requeue_stalled_tasks` ("pgflow" in ASCII).
pub const SWEEP_LOCK_KEY: i64 = 0x7067_666c_6f77;

/// Heartbeats `worker_id` every `interval` until `done` fires. When an
/// operator sets `deprecated_at`, cancels `stop_polling` so the poller stops
/// taking new work. Runs until the poller has drained, because the sweeper
/// treats a worker without recent heartbeats as dead and requeues its tasks.
pub(crate) async fn heartbeat_loop(
    pool: PgPool,
    worker_id: Uuid,
    interval: Duration,
    stop_polling: CancellationToken,
    done: CancellationToken,
) {
    loop {
        if sleep_or_stop(&done, interval).await {
            return;
        }
        match api::heartbeat(&pool, worker_id).await {
            Ok(true) if !stop_polling.is_cancelled() => {
                info!(%worker_id, "worker deprecated by an operator; no longer polling");
                stop_polling.cancel();
            }
            Ok(_) => debug!(%worker_id, "heartbeat"),
            Err(e) => warn!(%worker_id, error = %e, "heartbeat failed"),
        }
    }
}

/// Every `interval`, tries to become this round's sweeper (advisory lock)
/// and requeue stalled tasks. Plain Postgres has no pg_cron, so the workers
/// schedule this themselves; the lock keeps it to one runner at a time.
pub(crate) async fn sweeper_loop(pool: PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        if sleep_or_stop(&stop, interval).await {
            return;
        }
        match api::sweep_requeue_stalled(&pool, SWEEP_LOCK_KEY).await {
            Ok(Some(n)) if n > 0 => info!(requeued = n, "requeued stalled tasks"),
            Ok(_) => debug!("stalled-task sweep done"),
            Err(e) => warn!(error = %e, "stalled-task sweep failed"),
        }
    }
}
