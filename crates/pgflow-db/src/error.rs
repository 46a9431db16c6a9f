//! Errors of the db layer.

/// Everything that can fail while talking to the pgflow schema.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Could not connect; `url` has its password replaced by `***`.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The database URL, password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The URL could not be parsed.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl {
        /// The database URL, password hidden.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Installing pgmq from its embedded SQL failed.
    #[error("installing pgmq failed: {0}")]
    PgmqInstall(#[from] pgmq::PgmqError),
    /// The database has a pgmq older than pgflow needs.
    #[error("pgmq {found} is installed but pgflow needs pgmq >= {required}; upgrade pgmq first")]
    PgmqTooOld {
        /// Version found in the database.
        found: String,
        /// Minimum supported version.
        required: String,
    },
    /// A `pgmq` schema exists but its version cannot be told.
    #[error(
        "a `pgmq` schema exists but is neither the extension nor an SQL install with \
         version bookkeeping (pgmq.__pgmq_migrations), and lacks {missing}; \
         cannot tell whether it is pgmq >= 1.5.\n\
         hint: if that schema is empty or left over from an earlier attempt, drop it \
         (`DROP SCHEMA pgmq CASCADE;`, after checking it holds no queue you need) and run \
         `pgflow install` again, which then installs pgmq itself; or install the pgmq \
         extension (`CREATE EXTENSION pgmq;`) where it is available"
    )]
    PgmqUnrecognized {
        /// The function that was looked for and not found.
        missing: String,
    },
    /// Applying the embedded migrations failed.
    #[error("applying pgflow migrations failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A query sent over tokio-postgres (used by the installer) failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A query sent over sqlx failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

/// Returns `url` with its password, if any, replaced by `***`, so that it can
/// go into error messages and logs.
///
/// ```
/// assert_eq!(
///     pgflow_db::error::redact_url("postgres://me:secret@db:5432/app"),
///     "postgres://me:***@db:5432/app"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials at all.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Unparseable: better to show nothing than to leak a password.
        Err(_) => "<unparseable database URL>".to_string(),
    }
}
