//! [`ApiError`] and the one place sqlx errors become it.

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The database or the connection failed; see [`ApiError::is_transient`].
    #[error("{function}: {source}")]
    Db {
        /// The SQL function or query that failed, e.g. `pgflow.start_tasks`.
        function: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database answered with something this crate does not understand.
    #[error("{function}: unexpected result: {message}")]
    Decode {
        /// The SQL function or query.
        function: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The SQLSTATE of a database error, if the server raised one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            ApiError::Db {
                source: sqlx::Error::Database(e),
                ..
            } => e.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// True when no pooled connection became free within the pool's
    /// acquire timeout. Transient too, but a caller that loops on
    /// [`ApiError::is_transient`] should bound how often it retries this
    /// one: a pool that stays exhausted does not heal by waiting on it.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(
            self,
            ApiError::Db {
                source: sqlx::Error::PoolTimedOut,
                ..
            }
        )
    }

    /// The server's error message, if the server raised one.
    pub fn db_message(&self) -> Option<&str> {
        match self {
            ApiError::Db {
                source: sqlx::Error::Database(e),
                ..
            } => Some(e.message()),
            _ => None,
        }
    }

    /// True for failures worth retrying as-is: lost or refused connections,
    /// pool timeouts, server shutdown, serialization failures and deadlocks.
    /// False for errors the same call would hit again (bad input, a raised
    /// exception, a constraint).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Db { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(e) => e.code().is_some_and(|c| {
                    // 08: connection exception; 57P: operator intervention
                    // (admin/crash shutdown, cannot connect now); 40001/40P01:
                    // serialization failure / deadlock; 53: insufficient resources.
                    c.starts_with("08")
                        || c.starts_with("57P")
                        || c == "40001"
                        || c == "40P01"
                        || c.starts_with("53")
                }),
                _ => false,
            },
            ApiError::Decode { .. } => false,
        }
    }
}

/// Names the SQL function a driver result came from: every query of this
/// crate ends in `.or_api("pgflow.<function>")`, the single path from
/// `sqlx::Error` (row decoding included) to [`ApiError`].
pub(crate) trait OrApi<T> {
    fn or_api(self, function: &'static str) -> Result<T, ApiError>;
}

impl<T> OrApi<T> for Result<T, sqlx::Error> {
    fn or_api(self, function: &'static str) -> Result<T, ApiError> {
        self.map_err(|source| ApiError::Db { function, source })
    }
}

/// Decodes a `jsonb` result into `T`; a mismatch is an [`ApiError::Decode`].
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    function: &'static str,
    value: serde_json::Value,
) -> Result<T, ApiError> {
    serde_json::from_value::<T>(value.clone()).map_err(|e| ApiError::Decode {
        function,
        message: format!("{e} in {value}"),
    })
}
