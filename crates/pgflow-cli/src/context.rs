//! What every subcommand gets: the database URL, the output mode, and a
//! way to connect that turns driver errors into advice.

use std::io::IsTerminal;
use std::time::Duration;

use pgflow_db::api::ApiError;
use pgflow_db::error::{redact_url, tls_hint};
use std::str::FromStr;

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
/// with an actionable message.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let fail = |err: &dyn std::fmt::Display| {
        let err = err.to_string();
        match tls_hint(&err) {
            Some(hint) => {
                anyhow::anyhow!("cannot connect to {}: {err}\nhint: {hint}", redact_url(url))
            }
            None => anyhow::anyhow!(
                "cannot connect to {}: {err}\n\
                 hint: check that PostgreSQL is running there and the URL is right; \
                 pass --database-url URL or set DATABASE_URL",
                redact_url(url)
            ),
        }
    };
    let options = PgConnectOptions::from_str(url).map_err(|e| fail(&e))?;
    // One direct attempt first: a pool retries until its timeout and then
    // reports only "pool timed out", hiding e.g. "connection refused".
    let probe = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
        .await
        .map_err(|_| fail(&"no answer within 5 s"))?
        .map_err(|e| fail(&e))?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| fail(&e))
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
