//! The harness's own queries (SQL in `queries/*.sql`).

use sqlx::{PgExecutor, Row};
use uuid::Uuid;

/// Server settings reported with the results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerFacts {
    /// `server_version`.
    pub postgres_version: String,
    /// `synchronous_commit`.
    pub synchronous_commit: String,
    /// `fsync`.
    pub fsync: String,
    /// `shared_buffers`.
    pub shared_buffers: String,
    /// `max_connections`.
    pub max_connections: String,
    /// `shared_preload_libraries`.
    #[serde(skip)]
    pub shared_preload_libraries: String,
}

pub async fn facts<'e>(ex: impl PgExecutor<'e>) -> Result<ServerFacts, sqlx::Error> {
    let row = sqlx::query(include_str!("../queries/facts.sql"))
        .fetch_one(ex)
        .await?;
    Ok(ServerFacts {
        postgres_version: row.try_get("server_version")?,
        synchronous_commit: row.try_get("synchronous_commit")?,
        fsync: row.try_get("fsync")?,
        shared_buffers: row.try_get("shared_buffers")?,
        max_connections: row.try_get("max_connections")?,
        shared_preload_libraries: row.try_get("shared_preload_libraries")?,
    })
}

pub async fn ref_setup(ex: &sqlx::PgPool, clients: i32) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../queries/ref_create.sql"))
        .execute(ex)
        .await?;
    sqlx::query(include_str!("../queries/ref_fill.sql"))
        .bind(clients)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn ref_update<'e>(ex: impl PgExecutor<'e>, id: i32) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../queries/ref_update.sql"))
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn start_runs<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    n: i32,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/start_runs.sql"))
        .bind(flow_slug)
        .bind(n)
        .fetch_all(ex)
        .await
}

/// `(completed, failed or cancelled)` among `runs`.
pub async fn runs_status<'e>(
    ex: impl PgExecutor<'e>,
    runs: &[Uuid],
) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(include_str!("../queries/runs_status.sql"))
        .bind(runs)
        .fetch_one(ex)
        .await?;
    Ok((row.try_get("completed")?, row.try_get("failed")?))
}

pub async fn runs_span<'e>(ex: impl PgExecutor<'e>, runs: &[Uuid]) -> Result<f64, sqlx::Error> {
    let secs: Option<f64> = sqlx::query_scalar(include_str!("../queries/runs_span.sql"))
        .bind(runs)
        .fetch_one(ex)
        .await?;
    Ok(secs.unwrap_or(0.0))
}

pub async fn run_durations_ms<'e>(
    ex: impl PgExecutor<'e>,
    runs: &[Uuid],
) -> Result<Vec<f64>, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/run_durations.sql"))
        .bind(runs)
        .fetch_all(ex)
        .await
}

pub async fn hop_latencies_ms<'e>(
    ex: impl PgExecutor<'e>,
    runs: &[Uuid],
) -> Result<Vec<f64>, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/hop_latencies.sql"))
        .bind(runs)
        .fetch_all(ex)
        .await
}

pub async fn pgss_create<'e>(ex: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../queries/pgss_create.sql"))
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn pgss_reset<'e>(ex: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../queries/pgss_reset.sql"))
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn pgss_calls<'e>(ex: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/pgss_calls.sql"))
        .fetch_one(ex)
        .await
}

/// One line of `--profile`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopStatement {
    /// Executions.
    pub calls: i64,
    /// Server time, all executions.
    pub total_ms: f64,
    /// Server time per execution.
    pub mean_ms: f64,
    /// The statement (normalised, shortened).
    pub query: String,
}

pub async fn pgss_top<'e>(
    ex: impl PgExecutor<'e>,
    limit: i64,
) -> Result<Vec<TopStatement>, sqlx::Error> {
    let rows = sqlx::query(include_str!("../queries/pgss_top.sql"))
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TopStatement {
                calls: r.try_get("calls")?,
                total_ms: r.try_get("total_ms")?,
                mean_ms: r.try_get("mean_ms")?,
                query: r.try_get("query")?,
            })
        })
        .collect()
}

pub async fn xact_count<'e>(ex: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/xact_count.sql"))
        .fetch_one(ex)
        .await
}

pub async fn backend_pids<'e>(
    ex: impl PgExecutor<'e>,
    application_name: &str,
) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar(include_str!("../queries/backend_pids.sql"))
        .bind(application_name)
        .fetch_all(ex)
        .await
}
