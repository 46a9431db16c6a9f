//! Connection options for pgflow's pools, and the opt-in pooler mode.
//!
//! Behind a transaction-mode pooler (PgBouncer `pool_mode = transaction`)
//! consecutive protocol messages of one client may run on different server
//! connections, and a session's `LISTEN` never delivers anything. Add
//! `pooler=transaction` to the database URL and pgflow then:
//!
//! - sends every query of [`crate::api`] as one simple-protocol message with
//!   its arguments as escaped literals (no prepared statements at all, named
//!   or unnamed; see `api::simple`), turns sqlx's statement cache off and
//!   does not send the `extra_float_digits` startup parameter (PgBouncer
//!   refuses it unless `ignore_startup_parameters` lists it);
//! - does not `LISTEN` through that URL: wake-ups poll, or use a separate
//!   direct listen URL (`pgflow worker --listen-url`,
//!   `WorkerConfig::listen_options`, `Client::with_listen_options`).
//!
//! The mode is process-wide once any pool is opened with it: the [`crate::api`]
//! functions take any executor and cannot tell pools apart, and the simple
//! protocol is correct (only less cached) on direct connections too.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::PgConnectOptions;

/// The URL parameter that turns pooler mode on (`pooler=transaction`).
pub const POOLER_PARAM: &str = "pooler";

static POOLER_MODE: AtomicBool = AtomicBool::new(false);

/// Whether pooler mode is on in this process.
pub fn pooler_mode() -> bool {
    POOLER_MODE.load(Ordering::Relaxed)
}

/// Turns pooler mode on for this process (for pools built without
/// [`connect_options`], e.g. from a `PgConnectOptions` made in code).
pub fn enable_pooler_mode() {
    POOLER_MODE.store(true, Ordering::Relaxed);
}

/// A database URL pgflow cannot use.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// `pooler=` names a mode pgflow does not know.
    #[error("unsupported pooler={0:?} in the database URL: the only value is `transaction` (a PgBouncer-style pooler in transaction mode); drop the parameter for a direct connection")]
    UnknownPooler(String),
    /// The rest of the URL is not a PostgreSQL URL sqlx accepts.
    #[error("the database URL is not valid: {0}")]
    Invalid(#[source] sqlx::Error),
}

/// Parsed connection options and whether they go through a pooler.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The options, with the statement cache off in pooler mode.
    pub options: PgConnectOptions,
    /// `pooler=transaction` was given.
    pub pooler: bool,
}

/// Parses `url`, taking out pgflow's own `pooler` parameter (sqlx would warn
/// about it) and, when it is set, turning pooler mode on for this process.
pub fn connect_options(url: &str) -> Result<Connect, UrlError> {
    let (rest, pooler) = take_pooler_param(url)?;
    let mut options = PgConnectOptions::from_str(&rest).map_err(UrlError::Invalid)?;
    if pooler {
        enable_pooler_mode();
        // Nothing of pgflow's prepares through a pooler; this keeps sqlx's own
        // occasional queries from caching named statements too.
        options = options
            .statement_cache_capacity(0)
            // PgBouncer refuses startup parameters it does not track unless
            // its ignore_startup_parameters lists them; this one only tunes
            // float text output, which PostgreSQL 12+ makes exact anyway.
            .extra_float_digits(None);
    }
    Ok(Connect { options, pooler })
}

/// Whether `url` asks for pooler mode (`pooler=transaction`), for the tools
/// that need a session of their own (the installer, the dashboard) to refuse it.
pub fn is_pooler_url(url: &str) -> bool {
    take_pooler_param(url).is_ok_and(|(_, pooler)| pooler)
}

/// `url` without the `pooler` parameter, and whether it asked for pooler mode.
fn take_pooler_param(url: &str) -> Result<(String, bool), UrlError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), false));
    };
    let mut pooler = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((POOLER_PARAM, value)) => match value {
                "transaction" => pooler = true,
                // An explicit "no pooler" is allowed, e.g. to override a template.
                "none" | "" => {}
                other => return Err(UrlError::UnknownPooler(other.to_string())),
            },
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, pooler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooler_parameter_is_taken_out_of_the_url() {
        assert_eq!(
            take_pooler_param("postgres://u@h:6432/db?sslmode=require&pooler=transaction").unwrap(),
            ("postgres://u@h:6432/db?sslmode=require".to_string(), true)
        );
        assert_eq!(
            take_pooler_param("postgres://u@h/db?pooler=transaction").unwrap(),
            ("postgres://u@h/db".to_string(), true)
        );
        assert_eq!(
            take_pooler_param("postgres://u@h/db?pooler=none&application_name=x").unwrap(),
            ("postgres://u@h/db?application_name=x".to_string(), false)
        );
        let err = take_pooler_param("postgres://u@h/db?pooler=session")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported pooler=\"session\""), "{err}");
    }
}
