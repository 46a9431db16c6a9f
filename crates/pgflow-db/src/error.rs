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
         cannot tell whether it is pgmq >= 1.5"
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
    /// Another session held a lock for longer than we wait.
    #[error(
        "could not take {what} within {waited:?}: held by {holder}; wait for it to finish, \
         or end it with pg_terminate_backend(pid) if it should not hold the lock"
    )]
    LockTimeout {
        /// The lock.
        what: String,
        /// How long we waited.
        waited: std::time::Duration,
        /// The session holding it (`backend <pid> (role ..., application ...)`).
        holder: String,
    },
}

/// Returns `url` with its password, if any, replaced by `***`, so that it can
/// go into error messages and logs. Both places libpq accepts a password are
/// masked: `user:password@` and the `password=` query parameter.
///
/// ```
/// assert_eq!(
///     pgflow_db::error::redact_url("postgres://me:secret@db:5432/app"),
///     "postgres://me:***@db:5432/app"
/// );
/// assert_eq!(
///     pgflow_db::error::redact_url("postgres://me@db/app?password=secret&sslmode=require"),
///     "postgres://me@db/app?password=***&sslmode=require"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials at all.
                let _ = parsed.set_password(Some("***"));
            }
            let has_secret_param = parsed
                .query_pairs()
                .any(|(key, _)| key.eq_ignore_ascii_case("password"));
            if has_secret_param {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key.eq_ignore_ascii_case("password") {
                            "***".to_string()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                for (key, value) in &pairs {
                    query.append_pair(key, value);
                }
                parsed.set_query(Some(&query.finish()));
            }
            parsed.to_string()
        }
        // Unparseable: better to show nothing than to leak a password.
        Err(_) => "<unparseable database URL>".to_string(),
    }
}
