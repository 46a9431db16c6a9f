//! Fleet maintenance: requeue stalled tasks, set up roles.

use sqlx::PgExecutor;

use super::error::{ApiError, OrApi};

/// `pgflow.requeue_stalled_tasks`: requeues tasks whose worker died; returns
/// how many. Safe to call from many sessions (SKIP LOCKED), but see
/// [`sweep_requeue_stalled`] for the fleet-wide single-runner variant.
pub async fn requeue_stalled_tasks<'e>(ex: impl PgExecutor<'e>) -> Result<i32, ApiError> {
    sqlx::query_scalar(include_str!("../../queries/requeue_stalled_tasks.sql"))
        .fetch_one(ex)
        .await
        .or_api("pgflow.requeue_stalled_tasks")
}

/// Runs `requeue_stalled_tasks` only if this session wins the transaction
/// advisory lock `lock_key`: `Some(n)` when it ran, `None` when another
/// session holds the lock. This is how a fleet of workers without pg_cron
/// elects one sweeper per round.
pub async fn sweep_requeue_stalled<'e>(
    ex: impl PgExecutor<'e>,
    lock_key: i64,
) -> Result<Option<i32>, ApiError> {
    sqlx::query_scalar(include_str!("../../queries/sweep_requeue_stalled.sql"))
        .bind(lock_key)
        .fetch_one(ex)
        .await
        .or_api("pgflow.requeue_stalled_tasks")
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
    sqlx::query(include_str!("../../queries/setup_roles.sql"))
        .bind(worker_role)
        .bind(reader_role)
        .execute(ex)
        .await
        .or_api("pgflow.setup_roles")?;
    Ok(())
}
