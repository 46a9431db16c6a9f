//! What every subcommand gets: the database URL, the output mode, and a
//! way to connect that turns driver errors into advice.

use std::io::IsTerminal;
use std::time::Duration;

use pgflow_db::api::ApiError;
use pgflow_db::error::{error_chain, redact_url, tls_hint};
use pgflow_db::pool::UrlError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::output::Style;

/// Options accepted by every subcommand, before or after its name.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// PostgreSQL URL, e.g. postgres://user:pass@host:5432/db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Per-invocation settings shared by the commands.
#[derive(Debug, Clone)]
pub struct Context {
    /// The database URL, if one was given.
    pub database_url: Option<String>,
    /// `--json`.
    pub json: bool,
    /// Colours for stdout.
    pub style: Style,
    /// Whether stdout is a terminal (live redraws need one).
    pub stdout_is_terminal: bool,
}

impl Context {
    /// Builds the context from the parsed global options and the terminal.
    pub fn new(global: GlobalArgs) -> Self {
        let stdout_is_terminal = std::io::stdout().is_terminal();
        Context {
            database_url: global.database_url.filter(|url| !url.is_empty()),
            json: global.json,
            style: Style::for_stream(&std::io::stdout()),
            stdout_is_terminal,
        }
    }

    /// The URL, or an error telling the user how to give one.
    pub fn url(&self) -> anyhow::Result<&str> {
        self.database_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no database given: pass --database-url URL or set DATABASE_URL")
        })
    }

    /// Connects to the database; the error names the URL (password hidden)
    /// and how to fix it.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        let url = self.url()?;
        connect(url, 4).await
    }
}

/// Opens a pool of at most `max_connections` to `url`, failing fast (5 s)
/// with a message that says what kind of failure it was and what to do.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let shown = redact_url(url);
    let fail = |failure: ConnectFailure| {
        anyhow::anyhow!(
            "cannot connect to {shown}: {}\nhint: {}",
            failure.what,
            failure.hint
        )
    };
    check_scheme(url).map_err(fail)?;
    // Also takes out `pooler=transaction` (pooler mode, see pgflow_db::pool).
    let options = pgflow_db::pool::connect_options(url)
        .map_err(|e| match e {
            UrlError::Invalid(e) => fail(ConnectFailure {
                what: format!("the URL is not valid: {e}"),
                hint: "write it as postgres://user:password@host:5432/database".into(),
            }),
            other => fail(ConnectFailure {
                what: other.to_string(),
                hint: "write `?pooler=transaction` for PgBouncer in transaction mode".into(),
            }),
        })?
        .options;
    // One direct attempt first: a pool retries until its timeout and then
    // reports only "pool timed out", hiding e.g. "connection refused".
    let probe = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
        .await
        .map_err(|_| fail(timed_out(&options)))?
        .map_err(|e| fail(classify(&e, &options)))?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
        .map_err(|e| fail(classify(&e, &options)))
}

/// A failed connection explained: what happened, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    /// What went wrong, in words (the driver's text included where useful).
    pub what: String,
    /// What to try.
    pub hint: String,
}

/// Refuses URLs for other databases before trying them as PostgreSQL.
pub fn check_scheme(url: &str) -> Result<(), ConnectFailure> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(()),
        Some(other) => Err(ConnectFailure {
            what: format!("`{other}://` is not a PostgreSQL URL"),
            hint: "pgflow runs on PostgreSQL only: give a postgres:// or postgresql:// URL, \
                   e.g. postgres://user:password@host:5432/database"
                .into(),
        }),
        None => Err(ConnectFailure {
            what: "this is not a database URL".into(),
            hint: "write it as postgres://user:password@host:5432/database".into(),
        }),
    }
}

fn timed_out(options: &PgConnectOptions) -> ConnectFailure {
    ConnectFailure {
        what: format!(
            "no answer from {}:{} within 5 s",
            options.get_host(),
            options.get_port()
        ),
        hint: "check the host and port, and that no firewall drops the connection".into(),
    }
}

/// Sorts a driver error into the failures a user can act on.
pub fn classify(err: &sqlx::Error, options: &PgConnectOptions) -> ConnectFailure {
    // Certificate problems and servers that demand (or refuse) TLS show up as
    // TLS, I/O or database errors alike; their text says which.
    let text = error_chain(err);
    if let Some(hint) = tls_hint(&text) {
        return ConnectFailure {
            what: format!("the TLS (SSL) connection failed: {text}"),
            hint: hint.into(),
        };
    }
    let host = format!("{}:{}", options.get_host(), options.get_port());
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    match err {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            ConnectFailure {
                what: format!("connection refused: nothing accepts connections on {host}"),
                hint: "check that PostgreSQL is running there and that the host and port are right".into(),
            }
        }
        sqlx::Error::Io(io) if io.to_string().contains("lookup address") => ConnectFailure {
            what: format!("the host {:?} is unknown: {io}", options.get_host()),
            hint: "check the host name in the URL".into(),
        },
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01" | "28000") => ConnectFailure {
                what: format!("authentication failed for user {user:?}: {}", db.message()),
                hint: "check the user name and password in the URL (and the server's pg_hba.conf)".into(),
            },
            // invalid_catalog_name
            Some("3D000") => ConnectFailure {
                what: format!("the server at {host} has no database {database:?}"),
                hint: format!(
                    "create it (e.g. `createdb -h {} -p {} -U {user} {database}`) or name an existing one in the URL",
                    options.get_host(),
                    options.get_port()
                ),
            },
            _ => ConnectFailure {
                what: format!("the server refused the connection: {}", db.message()),
                hint: "check the user, database and server settings".into(),
            },
        },
        sqlx::Error::Tls(tls) => ConnectFailure {
            what: format!("the TLS (SSL) handshake failed: {tls}"),
            hint: "match the URL's sslmode to the server: `?sslmode=disable` for a server without TLS, \
                   or `?sslmode=verify-full&sslrootcert=/path/to/ca.crt` to trust its certificate"
                .into(),
        },
        sqlx::Error::Protocol(text) => ConnectFailure {
            what: format!("the server at {host} does not speak PostgreSQL's protocol as expected: {text}"),
            hint: "check that the port is PostgreSQL's (5432 by default), not another service's".into(),
        },
        sqlx::Error::PoolTimedOut => timed_out(options),
        other => ConnectFailure {
            what: other.to_string(),
            hint: "check that PostgreSQL is running there and the URL is right; \
                   pass --database-url URL or set DATABASE_URL"
                .into(),
        },
    }
}

/// Turns a database error into advice when the cause is a missing or
/// outdated pgflow schema, which is the usual mistake on a fresh database.
pub fn db_error(err: ApiError) -> anyhow::Error {
    match (err.sqlstate().as_deref(), err.db_message()) {
        // invalid_schema_name, undefined_table, undefined_function
        (Some("3F000" | "42P01" | "42883"), Some(msg)) => anyhow::anyhow!(
            "the pgflow schema is missing or outdated in this database ({msg}); \
             run `pgflow install` first"
        ),
        // ApiError's text already includes its source; converting it with
        // `From` would print the driver error twice in `{:#}`.
        _ => anyhow::anyhow!("{err}"),
    }
}
