//! The statuses of runs, steps and tasks, as the `pgflow` tables spell them.
//!
//! Each is stored as `text` with a check constraint, so each enum decodes
//! from and binds as `text`, and (de)serializes as the same lowercase word:
//! JSON printed from these types reads exactly like the database.
//!
//! ```
//! use pgflow_db::status::RunStatus;
//! let s: RunStatus = "cancelled".parse().unwrap();
//! assert!(s.is_terminal());
//! assert_eq!(s, "cancelled");
//! assert_eq!(serde_json::to_string(&s).unwrap(), "\"cancelled\"");
//! ```

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A status word the database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status {value:?}")]
pub struct UnknownStatus {
    /// `run`, `step` or `task`.
    pub kind: &'static str,
    /// The word that was given.
    pub value: String,
}

/// Declares a text-backed status enum with its spelling, terminal states and
/// the trait impls every status needs. A macro because the three enums
/// differ only in their words; the sqlx impls are written out (rather than
/// `#[derive(sqlx::Type)]`) since the columns are plain `text`, not a
/// Postgres enum type the derive could name.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal, terminal: [$($terminal:ident),*],
        { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every status, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The word stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            /// True once nothing will change it any more.
            pub fn is_terminal(self) -> bool {
                matches!(self, $($name::$terminal)|*)
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)*
                    other => Err(UnknownStatus { kind: $kind, value: other.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad` so that width and alignment flags work in tables.
                f.pad(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl crate::api::simple::Literal for $name {
            fn write_literal(&self, sql: &mut String) {
                crate::api::simple::Literal::write_literal(self.as_str(), sql)
            }
        }
    };
}

status_enum! {
    /// `pgflow.runs.status`.
    RunStatus, "run", terminal: [Completed, Failed, Cancelled],
    {
        /// Steps are still running or waiting.
        Started = "started",
        /// Every step completed or was skipped.
        Completed = "completed",
        /// A step failed.
        Failed = "failed",
        /// Cancelled by `pgflow.cancel_run` (pgflow-rs extension).
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// `pgflow.step_states.status`.
    StepStatus, "step", terminal: [Completed, Failed, Skipped, Cancelled],
    {
        /// Waiting for its dependencies.
        Created = "created",
        /// Its tasks are queued or running.
        Started = "started",
        /// Every task completed.
        Completed = "completed",
        /// A task exhausted its attempts (or a condition failed it).
        Failed = "failed",
        /// Skipped by a condition or an exhausted `skip` step.
        Skipped = "skipped",
        /// The run was cancelled.
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// `pgflow.step_tasks.status`.
    TaskStatus, "task", terminal: [Completed, Failed, Cancelled],
    {
        /// Waiting in the queue (also after a failed attempt that will be retried).
        Queued = "queued",
        /// Claimed by a worker.
        Started = "started",
        /// Reported done.
        Completed = "completed",
        /// Out of attempts.
        Failed = "failed",
        /// The run was cancelled.
        Cancelled = "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_text_and_json() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::Value::from(s.as_str()));
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), *s);
        }
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
        }
    }

    #[test]
    fn terminal_statuses() {
        assert!(!RunStatus::Started.is_terminal());
        assert!(RunStatus::Cancelled.is_terminal());
        assert!(StepStatus::Skipped.is_terminal());
        assert!(!StepStatus::Created.is_terminal());
        assert!(!TaskStatus::Queued.is_terminal());
        assert!(TaskStatus::Failed.is_terminal());
    }

    #[test]
    fn unknown_words_are_named_in_the_error() {
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown run status \"done\"");
    }

    #[test]
    fn display_pads_like_a_string() {
        assert_eq!(format!("[{:<9}]", StepStatus::Started), "[started  ]");
    }
}
