//! Built-in pgflow step handlers (temporary root, docs follow).

mod error;
mod kind;
pub mod kinds;
mod output;
mod registry;
mod response;
mod spec;
mod task_env;
mod templating;

pub use error::{HandlerError, SpecError, StepSpecError};
pub use kind::{BoxFuture, HandlerKind, PreparedHandler};
pub use output::{HandlerOutput, Usage};
pub use registry::Registry;
pub use reqwest;
pub use task_env::{default_http_client, EnvLookup, ProcessEnv, Resources, TaskEnv};
