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
use tokio_postgres::Client;

use crate::error::redact_url;
use crate::migrations;
use crate::DbError;
use refinery::Runner;

mod pgmq_setup;

pub use pgmq_setup::{PgmqAction, PgmqSource, PgmqStatus, MIN_PGMQ_VERSION};

/// Session-level advisory lock key held for the whole install, so that two
/// installers (e.g. several workers booting at once) run one after the other
/// and the second one finds nothing to do. ASCII "pgflow" plus a tag.
const INSTALL_LOCK_KEY: i64 = 0x7067_666c_6f77_0001;

/// How long [`install`] waits for the install lock. Any role that can connect
/// can take an advisory lock, so waiting forever would let it block every
/// install (and every worker that installs at startup).
pub const INSTALL_LOCK_WAIT: Duration = Duration::from_secs(120);

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

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.pgmq.version.as_deref().unwrap_or("(version unknown)");
        let source = self.pgmq.source.describe();
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

/// A migration that [`install`] would apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingMigration {
    /// The `n` of `V<n>`.
    pub version: i32,
    /// The descriptive part of the file name (`V<n>__<name>.sql`).
    pub name: String,
}

/// What [`install`] would do, as found by [`dry_run`] (which changes nothing).
/// `Display` gives a short human summary; `Serialize` the same as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallPlan {
    /// The pgmq found in the database; `None` when [`install`] would install it.
    pub pgmq: Option<PgmqStatus>,
    /// Migrations [`install`] would apply, oldest first.
    pub pending_migrations: Vec<PendingMigration>,
    /// Version of the newest migration applied so far (`n` of `V<n>`).
    pub schema_version: Option<i32>,
}

impl fmt::Display for InstallPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pgmq {
            Some(pgmq) => {
                let version = pgmq.version.as_deref().unwrap_or("(version unknown)");
                let source = pgmq.source.describe();
                writeln!(f, "pgmq {version} already present ({source})")?;
            }
            None => writeln!(f, "pgmq would be installed (embedded SQL)")?,
        }
        let schema = match self.schema_version {
            Some(v) => format!("V{v}"),
            None => "no migrations".to_string(),
        };
        if self.pending_migrations.is_empty() {
            writeln!(f, "no migrations pending: schema up to date ({schema})")?;
        } else {
            writeln!(
                f,
                "migrations that would be applied, in order (now {schema}):"
            )?;
            for m in &self.pending_migrations {
                writeln!(f, "  V{}__{}", m.version, m.name)?;
            }
        }
        write!(f, "dry run: nothing was changed")
    }
}

/// What [`install`] would do to the database at `database_url`, without
/// changing anything: whether pgmq would be installed and which migrations
/// would be applied. Fails as [`install`] would on a pgmq that is too old or
/// on a migration history this build does not match.
pub async fn dry_run(database_url: &str) -> Result<InstallPlan, DbError> {
    let mut client = connect(database_url).await?;
    let pgmq = pgmq_setup::detect_pgmq(&client).await?;
    if let Some(version) = pgmq.as_ref().and_then(|p| p.version.as_deref()) {
        pgmq_setup::check_version(version)?;
    }
    // refinery reads the history table without creating it only when it exists.
    let has_history: bool = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL",
            &[&migrations::HISTORY_TABLE],
        )
        .await?
        .get(0);
    let runner = migrations::runner();
    let applied = if has_history {
        runner.get_applied_migrations_async(&mut client).await?
    } else {
        Vec::new()
    };
    let pending = pending_migrations(&applied, runner.get_migrations())?
        .into_iter()
        .map(|m| PendingMigration {
            version: m.version(),
            name: m.name().to_string(),
        })
        .collect();
    Ok(InstallPlan {
        pgmq,
        pending_migrations: pending,
        schema_version: applied.iter().map(|m| m.version()).max(),
    })
}

/// The embedded migrations not yet `applied`, in order; the same checks as
/// refinery makes before applying (pgflow keeps its defaults: abort on a
/// divergent or missing migration), so that a dry run fails where install would.
fn pending_migrations<'a>(
    applied: &[refinery::Migration],
    embedded: &'a [refinery::Migration],
) -> Result<Vec<&'a refinery::Migration>, DbError> {
    for app in applied {
        match embedded.iter().find(|m| m.version() == app.version()) {
            None => {
                return Err(DbError::MigrationHistory(format!(
                    "the database has {app}, which this build does not have \
                     (was it installed by a newer pgflow?)"
                )))
            }
            Some(m) if m != app => {
                return Err(DbError::MigrationHistory(format!(
                    "the database's {app} differs from this build's {m}"
                )))
            }
            Some(_) => {}
        }
    }
    let current = applied.iter().map(|m| m.version()).max();
    let mut pending: Vec<&refinery::Migration> = embedded
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version() == m.version()))
        .collect();
    pending.sort_by_key(|m| m.version());
    if let Some(skipped) = pending.iter().find(|m| Some(m.version()) < current) {
        return Err(DbError::MigrationHistory(format!(
            "{skipped} is not applied although a newer migration is"
        )));
    }
    Ok(pending)
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
    let pgmq = pgmq_setup::ensure_pgmq(&client, database_url).await?;

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
    fn pending_migrations_follow_refinery() {
        let m = |name: &str, sql: &str| refinery::Migration::unapplied(name, sql).unwrap();
        let embedded = [
            m("V1__a", "select 1"),
            m("V2__b", "select 2"),
            m("V3__c", "select 3"),
        ];
        let names = |applied: &[refinery::Migration]| -> Vec<String> {
            pending_migrations(applied, &embedded)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(names(&[]), ["V1__a", "V2__b", "V3__c"]);
        assert_eq!(names(&embedded[..2]), ["V3__c"]);
        assert!(names(&embedded).is_empty());

        let newer = pending_migrations(&[m("V4__d", "select 4")], &embedded).unwrap_err();
        assert!(
            newer
                .to_string()
                .contains("V4__d, which this build does not have"),
            "{newer}"
        );
        let edited = pending_migrations(&[m("V1__a", "select 9")], &embedded).unwrap_err();
        assert!(edited.to_string().contains("V1__a differs"), "{edited}");
        let gap = pending_migrations(&[embedded[1].clone()], &embedded).unwrap_err();
        assert!(gap.to_string().contains("V1__a is not applied"), "{gap}");
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
