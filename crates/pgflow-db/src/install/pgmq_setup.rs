//! Finding pgmq in the database, or installing it from the SQL embedded in the
//! `pgmq` crate, and checking that it is recent enough.

use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tokio_postgres::Client;

use crate::error::redact_url;
use crate::DbError;

/// The oldest pgmq pgflow works with (`read_with_poll`, `send_batch` with a
/// delay, `set_vt` as pgflow calls them).
pub const MIN_PGMQ_VERSION: (u32, u32, u32) = (1, 5, 0);

/// Functions of pgmq that pgflow calls; checked when a `pgmq` schema exists
/// without any version bookkeeping.
const REQUIRED_PGMQ_FUNCTIONS: &[&str] = &[
    "create",
    "send_batch",
    "read_with_poll",
    "set_vt",
    "archive",
    "list_queues",
];

/// The pgmq found or installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PgmqStatus {
    /// What the installer did about pgmq.
    pub action: PgmqAction,
    /// How that pgmq is installed.
    pub source: PgmqSource,
    /// Its version, when it can be told.
    pub version: Option<String>,
}

/// Whether pgmq was installed by this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PgmqAction {
    /// This run installed it.
    Installed,
    /// It was there already and is used as is.
    AlreadyPresent,
}

/// How pgmq is present in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PgmqSource {
    /// `CREATE EXTENSION pgmq`.
    Extension,
    /// Plain SQL with pgmq's own bookkeeping (`pgmq.__pgmq_migrations`), e.g.
    /// from the `pgmq` crate's embedded scripts.
    EmbeddedSql,
    /// A `pgmq` schema without any version information.
    UnversionedSql,
}

/// Finds the installed pgmq, or installs it from embedded SQL.
pub(super) async fn ensure_pgmq(
    client: &Client,
    database_url: &str,
) -> Result<PgmqStatus, DbError> {
    let status = match detect_pgmq(client).await? {
        Some(status) => status,
        None => {
            tracing::info!("pgmq not found; installing it from embedded SQL");
            // The pgmq crate installs through sqlx; one connection is enough.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(database_url)
                .await
                .map_err(|e| DbError::Connect {
                    url: redact_url(database_url),
                    source: Box::new(e),
                })?;
            let installed = pgmq::install::install_sql_from_embedded(&pool).await;
            pool.close().await;
            installed?;
            let mut status = detect_pgmq(client).await?.ok_or_else(|| {
                DbError::PgmqInstall(pgmq::PgmqError::InstallationError(
                    "no pgmq schema after installing it".to_string(),
                ))
            })?;
            status.action = PgmqAction::Installed;
            status
        }
    };
    if let Some(version) = &status.version {
        check_version(version)?;
    }
    Ok(status)
}

impl PgmqSource {
    /// How it reads in a sentence: "extension", "embedded SQL", ...
    pub fn describe(self) -> &'static str {
        match self {
            PgmqSource::Extension => "extension",
            PgmqSource::EmbeddedSql => "embedded SQL",
            PgmqSource::UnversionedSql => "unversioned SQL",
        }
    }
}

/// Looks for pgmq as an extension, then as a plain-SQL install.
pub(super) async fn detect_pgmq(client: &Client) -> Result<Option<PgmqStatus>, DbError> {
    let present = |source, version| {
        Some(PgmqStatus {
            action: PgmqAction::AlreadyPresent,
            source,
            version,
        })
    };

    if let Some(row) = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'pgmq'",
            &[],
        )
        .await?
    {
        return Ok(present(PgmqSource::Extension, Some(row.get(0))));
    }

    let row = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'pgmq'),
                    to_regclass('pgmq.__pgmq_migrations') IS NOT NULL",
            &[],
        )
        .await?;
    let (has_schema, has_bookkeeping): (bool, bool) = (row.get(0), row.get(1));
    if !has_schema {
        return Ok(None);
    }
    if has_bookkeeping {
        let versions: Vec<String> = client
            .query("SELECT version FROM pgmq.__pgmq_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let newest = versions
            .into_iter()
            .filter_map(|v| parse_version(&v).map(|parsed| (parsed, v)))
            .max()
            .map(|(_, v)| v);
        if newest.is_some() {
            return Ok(present(PgmqSource::EmbeddedSql, newest));
        }
    }

    // Someone loaded pgmq.sql by hand: no version to read, so make sure at
    // least the functions pgflow calls are there.
    for function in REQUIRED_PGMQ_FUNCTIONS {
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_proc p
                  JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = 'pgmq' AND p.proname = $1)",
                &[function],
            )
            .await?
            .get(0);
        if !exists {
            return Err(DbError::PgmqUnrecognized {
                missing: format!("pgmq.{function}()"),
            });
        }
    }
    tracing::warn!("pgmq schema has no version information; assuming it is recent enough");
    Ok(present(PgmqSource::UnversionedSql, None))
}

pub(super) fn check_version(version: &str) -> Result<(), DbError> {
    let (major, minor, patch) = MIN_PGMQ_VERSION;
    match parse_version(version) {
        Some(found) if found >= MIN_PGMQ_VERSION => Ok(()),
        _ => Err(DbError::PgmqTooOld {
            found: version.to_string(),
            required: format!("{major}.{minor}.{patch}"),
        }),
    }
}

/// Parses `1.2.3` (or `1.2`) into a comparable triple.
fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("1.11.1"), Some((1, 11, 1)));
        assert!(parse_version("1.11.1") > parse_version("1.5.0"));
        assert_eq!(parse_version("1.5"), Some((1, 5, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(check_version("1.4.9").is_err());
        assert!(check_version("1.5.0").is_ok());
    }
}
