//! Worker rows: register, heartbeat, mark stopped.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::error::{ApiError, OrApi};

/// Inserts the worker row (must happen before `start_tasks` names the worker).
pub async fn register_worker<'e>(
    ex: impl PgExecutor<'e>,
    queue_name: &str,
    worker_id: Uuid,
    function_name: &str,
) -> Result<(), ApiError> {
    call!(
        query "register_worker.sql",
        "pgflow.workers",
        execute(ex),
        queue_name,
        worker_id,
        function_name,
    )?;
    Ok(())
}

/// Heartbeat: bumps `last_heartbeat_at`. Returns `true` when an operator has
/// deprecated this worker (it should stop polling), and also when the row is
/// gone (e.g. pruned), since such a worker cannot claim tasks anyway.
pub async fn heartbeat<'e>(ex: impl PgExecutor<'e>, worker_id: Uuid) -> Result<bool, ApiError> {
    let deprecated: Option<bool> =
        call!(scalar "heartbeat.sql", "pgflow.workers", fetch_optional(ex), worker_id)?;
    Ok(deprecated.unwrap_or(true))
}

/// `pgflow.mark_worker_stopped`: sets the worker's `stopped_at`.
pub async fn mark_worker_stopped<'e>(
    ex: impl PgExecutor<'e>,
    worker_id: Uuid,
) -> Result<(), ApiError> {
    call!(query "mark_worker_stopped.sql", "pgflow.mark_worker_stopped", execute(ex), worker_id)?;
    Ok(())
}

/// `pgflow.set_worker_dead_after`: how long this worker may go without a
/// heartbeat before the fleet's sweep presumes it dead (the sweep uses the
/// longer of this and `pgflow.config.dead_worker_after`).
pub async fn set_worker_dead_after<'e>(
    ex: impl PgExecutor<'e>,
    worker_id: Uuid,
    dead_after: std::time::Duration,
) -> Result<(), ApiError> {
    call!(
        query "set_worker_dead_after.sql",
        "pgflow.set_worker_dead_after",
        execute(ex),
        worker_id,
        dead_after.as_secs_f64(),
    )?;
    Ok(())
}
