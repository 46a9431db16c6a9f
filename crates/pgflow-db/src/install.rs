//! Installs pgflow into a database: pgmq first (when missing), then the
//! embedded schema migrations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pgflow_db::DbError> {
//! let report = pgflow_db::install::install("postgres://postgres@localhost/app").await?;
//! println!("{report}"); // e.g. "pgmq 1.11.1 installed (embedded SQL)\napplied migrations: V1__pgflow_core"
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tokio_postgres::Client;

use crate::error::redact_url;
use crate::migrations;
use crate::DbError;
use refinery::Runner;

/// The oldest pgmq pgflow works with (`read_with_poll`, `send_batch` with a
/// delay, `set_vt` as pgflow calls them).
pub const MIN_PGMQ_VERSION: (u32, u32, u32) = (1, 5, 0);

/// Session-level advisory lock key held for the whole install, so that two
/// installers (e.g. several workers booting at once) run one after the other
/// and the second one finds nothing to do. ASCII "pgflow" plus a tag.
const INSTALL_LOCK_KEY: i64 = 0x7067_666c_6f77_0001;

/// How long [`install`] waits for the install lock. Any role that can connect
/// can take an advisory lock, so waiting forever would let it block every
/// install (and every worker that installs at startup).
pub const INSTALL_LOCK_WAIT: Duration = Duration::from_secs(120);

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

/// What [`install`] did. `Display` gives a short human summary; `Serialize`
/// gives the same as JSON (for `pgflow install --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallReport {
    /// The pgmq that pgflow will use.
    pub pgmq: PgmqStatus,
    /// Migrations applied by this run, in order (`V<n>__<name>`).
    pub applied_migrations: Vec<String>,
    /// Migrations that were already applied before this run.
    pub already_applied_migrations: Vec<String>,
    /// Version of the newest migration now applied (`n` of `V<n>`).
    pub schema_version: Option<i32>,
}

impl InstallReport {
    /// Whether this run changed the database at all.
    pub fn changed(&self) -> bool {
        self.pgmq.action == PgmqAction::Installed || !self.applied_migrations.is_empty()
    }
}

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

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.pgmq.version.as_deref().unwrap_or("(version unknown)");
        let source = match self.pgmq.source {
            PgmqSource::Extension => "extension",
            PgmqSource::EmbeddedSql => "embedded SQL",
            PgmqSource::UnversionedSql => "unversioned SQL",
        };
        match self.pgmq.action {
            PgmqAction::Installed => writeln!(f, "pgmq {version} installed ({source})")?,
            PgmqAction::AlreadyPresent => writeln!(f, "pgmq {version} already present ({source})")?,
        }
        let schema = match self.schema_version {
            Some(v) => format!("V{v}"),
            None => "no migrations".to_string(),
        };
        if self.applied_migrations.is_empty() {
            writeln!(f, "schema up to date ({schema})")?;
        } else {
            writeln!(
                f,
                "applied migrations: {}",
                self.applied_migrations.join(", ")
            )?;
        }
        if self.changed() {
            write!(f, "pgflow schema now at {schema}")
        } else {
            write!(f, "nothing to do")
        }
    }
}

/// Installs pgmq (if missing) and applies pending pgflow migrations to the
/// database at `database_url`. Idempotent, and safe to run concurrently.
///
/// pgmq is reused when the extension or a `pgmq` schema exists; otherwise it is
/// installed as plain SQL from the scripts embedded in the `pgmq` crate (no
/// extension needed on the server). Either way it must be >= 1.5.
pub async fn install(database_url: &str) -> Result<InstallReport, DbError> {
    install_with(database_url, migrations::runner(), INSTALL_LOCK_WAIT).await
}

/// Like [`install`], but applies migrations only up to and including
/// `version` (the `n` of `V<n>`): the state of a database installed by an
/// older release, e.g. to test that upgrading from it works.
pub async fn install_through(database_url: &str, version: i32) -> Result<InstallReport, DbError> {
    install_with(
        database_url,
        migrations::runner_through(version),
        INSTALL_LOCK_WAIT,
    )
    .await
}

/// [`install`], waiting at most `lock_wait` for another session's install
/// lock: then it fails with [`DbError::LockTimeout`], naming that session.
pub async fn install_waiting(
    database_url: &str,
    lock_wait: Duration,
) -> Result<InstallReport, DbError> {
    install_with(database_url, migrations::runner(), lock_wait).await
}

async fn install_with(
    database_url: &str,
    runner: Runner,
    lock_wait: Duration,
) -> Result<InstallReport, DbError> {
    let shown_url = redact_url(database_url);
    if crate::pool::is_pooler_url(database_url) {
        // The install lock is a session lock and migrations span several
        // transactions: neither survives transaction pooling.
        return Err(DbError::InvalidUrl {
            url: shown_url,
            reason: "the installer needs a direct connection, not one through a \
                     transaction-mode pooler: give the database's own address, without \
                     pooler=transaction"
                .into(),
        });
    }
    let client = connect(database_url).await?;

    tracing::debug!(url = %shown_url, "waiting for the install lock");
    lock_install(&client, lock_wait).await?;
    // On error the client is dropped, which ends the session and so releases
    // the lock too.
    install_locked(client, database_url, runner).await
}

/// Takes the session-level install lock, polling until `wait` has passed.
async fn lock_install(client: &Client, wait: Duration) -> Result<(), DbError> {
    let deadline = Instant::now() + wait;
    loop {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&INSTALL_LOCK_KEY])
            .await?
            .get(0);
        if locked {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let holder = client
                .query_opt(
                    include_str!("../queries/install_lock_holder.sql"),
                    &[&INSTALL_LOCK_KEY],
                )
                .await?
                .map(|row| {
                    let pid: i32 = row.get(0);
                    let role: String = row.get(1);
                    let application: String = row.get(2);
                    format!("backend {pid} (role {role}, application {application:?})")
                })
                .unwrap_or_else(|| "another session".to_string());
            return Err(DbError::LockTimeout {
                what: "the pgflow install lock".to_string(),
                waited: wait,
                holder,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects with tokio-postgres (TLS as the URL's `sslmode` and
/// `sslrootcert` say) and drives the connection on a task.
async fn connect(database_url: &str) -> Result<Client, DbError> {
    crate::tls::connect_tokio_postgres(database_url).await
}

async fn install_locked(
    mut client: Client,
    database_url: &str,
    runner: Runner,
) -> Result<InstallReport, DbError> {
    let pgmq = ensure_pgmq(&client, database_url).await?;

    let report = runner.run_async(&mut client).await?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect();
    let all_applied = migrations::runner()
        .get_applied_migrations_async(&mut client)
        .await?;
    let schema_version = all_applied.iter().map(|m| m.version()).max();
    let already_applied = all_applied
        .iter()
        .map(ToString::to_string)
        .filter(|name| !applied.contains(name))
        .collect();

    client
        .execute("SELECT pg_advisory_unlock($1)", &[&INSTALL_LOCK_KEY])
        .await?;
    let report = InstallReport {
        pgmq,
        applied_migrations: applied,
        already_applied_migrations: already_applied,
        schema_version,
    };
    tracing::info!(changed = report.changed(), "install finished");
    Ok(report)
}

/// Finds the installed pgmq, or installs it from embedded SQL.
async fn ensure_pgmq(client: &Client, database_url: &str) -> Result<PgmqStatus, DbError> {
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

/// Looks for pgmq as an extension, then as a plain-SQL install.
async fn detect_pgmq(client: &Client) -> Result<Option<PgmqStatus>, DbError> {
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

fn check_version(version: &str) -> Result<(), DbError> {
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

    fn report(action: PgmqAction, applied: &[&str]) -> InstallReport {
        InstallReport {
            pgmq: PgmqStatus {
                action,
                source: PgmqSource::EmbeddedSql,
                version: Some("1.11.1".into()),
            },
            applied_migrations: applied.iter().map(|s| s.to_string()).collect(),
            already_applied_migrations: vec![],
            schema_version: Some(1),
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("1.11.1"), Some((1, 11, 1)));
        assert!(parse_version("1.11.1") > parse_version("1.5.0"));
        assert_eq!(parse_version("1.5"), Some((1, 5, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(check_version("1.4.9").is_err());
        assert!(check_version("1.5.0").is_ok());
    }

    #[test]
    fn display_says_what_happened() {
        let fresh = report(PgmqAction::Installed, &["V1__pgflow_core"]).to_string();
        assert!(
            fresh.contains("pgmq 1.11.1 installed (embedded SQL)"),
            "{fresh}"
        );
        assert!(
            fresh.contains("applied migrations: V1__pgflow_core"),
            "{fresh}"
        );

        let again = report(PgmqAction::AlreadyPresent, &[]).to_string();
        assert!(again.contains("pgmq 1.11.1 already present"), "{again}");
        assert!(again.contains("schema up to date (V1)"), "{again}");
        assert!(again.ends_with("nothing to do"), "{again}");
    }
}
