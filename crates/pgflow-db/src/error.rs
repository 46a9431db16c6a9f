//! Errors of the db layer.

/// Everything that can fail while talking to the pgflow schema.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Could not connect; `url` has its password replaced by `***`. TLS
    /// failures (wrong CA, host name, a server that demands TLS) end with a
    /// `hint:` line.
    #[error("cannot connect to {url}: {}", with_tls_hint(error_chain(&**source)))]
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
    /// The database's migration history does not match the embedded
    /// migrations (found by a dry run; a real install refuses the same way).
    #[error("pgflow migrations in the database do not match this build: {0}")]
    MigrationHistory(String),
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

/// `err` and its sources, `: `-separated. tokio-postgres says only "error
/// performing TLS handshake" and keeps rustls's reason in the source.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Advice for a connection error whose text shows a TLS problem; `None`
/// for anything else. Matches the wording of both drivers and the server.
pub fn tls_hint(error_text: &str) -> Option<&'static str> {
    let has = |s: &str| error_text.contains(s);
    Some(if has("UnknownIssuer") || has("unknown issuer") {
        "the server's certificate is not signed by a CA in sslrootcert (or, without \
         sslrootcert, by a public CA): point sslrootcert at the CA that issued it"
    } else if has("NotValidForName") || has("not valid for name") {
        "the server's certificate does not name this host: connect with a host name \
         the certificate lists, or use sslmode=verify-ca"
    } else if has("Expired") || has("expired") || has("NotValidYet") {
        "the server's certificate has expired or is not valid yet"
    } else if has("no encryption") {
        "the server only accepts TLS connections: add sslmode=require (better: \
         sslmode=verify-full with sslrootcert) to the URL"
    } else if has("does not support TLS") || has("does not support SSL") || has("SSL off") {
        "the server does not accept TLS: enable ssl on the server, or use sslmode=prefer"
    } else {
        return None;
    })
}

/// `error_text` followed by a `hint:` line when [`tls_hint`] has one.
pub fn with_tls_hint(error_text: String) -> String {
    match tls_hint(&error_text) {
        Some(h) => format!("{error_text}\nhint: {h}"),
        None => error_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_tls_problem() {
        assert!(tls_hint("invalid peer certificate: UnknownIssuer")
            .unwrap()
            .contains("sslrootcert"));
        assert!(
            tls_hint("no pg_hba.conf entry for host \"1\", no encryption")
                .unwrap()
                .contains("sslmode=require")
        );
        assert_eq!(tls_hint("connection refused"), None);
    }
}
