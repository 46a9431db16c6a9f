//! Fleet maintenance: requeue stalled tasks, set up roles.

use sqlx::PgExecutor;

use super::error::{ApiError, OrApi};

/// `pgflow.requeue_stalled_tasks`: requeues tasks whose worker died; returns
/// how many. Safe to call from many sessions (SKIP LOCKED), but see
/// [`sweep_requeue_stalled`] for the fleet-wide single-runner variant.
pub async fn requeue_stalled_tasks<'e>(ex: impl PgExecutor<'e>) -> Result<i32, ApiError> {
    call!(scalar "requeue_stalled_tasks.sql", "pgflow.requeue_stalled_tasks", fetch_one(ex))
}

/// Runs `requeue_stalled_tasks` only if this session wins the transaction
/// advisory lock `lock_key`: `Some(n)` when it ran, `None` when another
/// session holds the lock. This is how a fleet of workers without pg_cron
/// elects one sweeper per round.
pub async fn sweep_requeue_stalled<'e>(
    ex: impl PgExecutor<'e>,
    lock_key: i64,
) -> Result<Option<i32>, ApiError> {
    call!(
        scalar "sweep_requeue_stalled.sql",
        "pgflow.requeue_stalled_tasks",
        fetch_one(ex),
        lock_key,
    )
}

/// `pgflow.setup_roles`: creates (when missing) a NOLOGIN role for workers, allowed only to
/// claim and report tasks, and a read-only role for inspection, and grants them what they
/// need. Idempotent; needs CREATEROLE. Grant the roles to login roles afterwards:
///
/// ```sql
/// CREATE ROLE worker_app LOGIN PASSWORD '...' IN ROLE pgflow_worker;
/// ```
pub async fn setup_roles<'e>(
    ex: impl PgExecutor<'e>,
    worker_role: &str,
    reader_role: &str,
) -> Result<(), ApiError> {
    call!(query "setup_roles.sql", "pgflow.setup_roles", execute(ex), worker_role, reader_role)?;
    Ok(())
}

/// `pgflow.set_realtime_send`: turns the broadcast of events through Supabase's
/// `realtime.send` on or off. Turning it on fails, changing nothing, unless
/// `realtime.send` exists and it and its schema belong to a superuser or the
/// owner of schema `pgflow` (pgflow calls it with its owner's privileges).
pub async fn set_realtime_send<'e>(
    ex: impl PgExecutor<'e>,
    enabled: bool,
) -> Result<bool, ApiError> {
    call!(scalar "set_realtime_send.sql", "pgflow.set_realtime_send", fetch_one(ex), enabled)
}
