//! Typed step handlers, the per-task context, and type erasure.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use pgflow_db::api::{self, ApiError};
use pgflow_handlers::Usage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a handler produced no output (panics and timeouts are caught by the
/// executor separately). Its `Display` text becomes `step_tasks.error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerFailure {
    /// The task input did not deserialize into the handler's input type.
    #[error("handler input did not match the expected type: {0}")]
    InputMismatch(String),
    /// The handler returned an error.
    #[error("handler returned an error: {0}")]
    Handler(String),
    /// The handler's output could not be turned into JSON.
    #[error("handler output is not serializable to JSON: {0}")]
    OutputNotJson(String),
    /// A built-in handler failed. A failure that is not `retryable` still
    /// uses the step's attempts (as every failure does); `retry_after`, the
    /// delay a server asked for, postpones the next attempt when it is
    /// longer than the step's backoff.
    #[error("{message}")]
    Builtin {
        /// The task's error message.
        message: String,
        /// Whether another attempt could succeed.
        retryable: bool,
        /// The server's `Retry-After`.
        retry_after: Option<std::time::Duration>,
    },
}

impl HandlerFailure {
    /// The delay a server asked for before the next attempt.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            HandlerFailure::Builtin { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The type-erased form every handler is stored as.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(Value, TaskContext) -> BoxFuture<Result<Value, HandlerFailure>> + Send + Sync>;

/// Wraps a typed async handler: deserializes the input, runs the handler,
/// serializes the output.
pub(crate) fn erase<I, O, E, F, Fut>(handler: F) -> ErasedHandler
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    E: Display + Send + 'static,
    F: Fn(I, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |input: Value, ctx: TaskContext| {
        let handler = handler.clone();
        Box::pin(async move {
            let input: I = serde_json::from_value(input)
                .map_err(|e| HandlerFailure::InputMismatch(e.to_string()))?;
            // `{:#}` shows the whole cause chain for anyhow-style errors and
            // is plain Display for everything else.
            let output = handler(input, ctx)
                .await
                .map_err(|e| HandlerFailure::Handler(format!("{e:#}")))?;
            serde_json::to_value(&output).map_err(|e| HandlerFailure::OutputNotJson(e.to_string()))
        })
    })
}

/// Run inputs cached per worker, so handlers of many tasks of one run read
/// `pgflow.runs.input` once.
#[derive(Debug, Default)]
pub(crate) struct RunInputCache {
    inner: Mutex<HashMap<Uuid, Value>>,
}

impl RunInputCache {
    /// Entries kept before the cache is cleared; inputs can be large, and a
    /// worker sees an unbounded number of runs over its life.
    const MAX_ENTRIES: usize = 256;

    fn get(&self, run_id: Uuid) -> Option<Value> {
        self.inner.lock().expect("cache lock").get(&run_id).cloned()
    }

    fn put(&self, run_id: Uuid, input: Value) {
        let mut map = self.inner.lock().expect("cache lock");
        if map.len() >= Self::MAX_ENTRIES {
            map.clear();
        }
        map.insert(run_id, input);
    }
}

/// What a handler knows about the task it runs.
#[derive(Clone)]
pub struct TaskContext {
    pub(crate) flow_slug: Arc<str>,
    pub(crate) run_id: Uuid,
    pub(crate) step_slug: String,
    pub(crate) task_index: i32,
    pub(crate) msg_id: i64,
    pub(crate) attempt: i32,
    pub(crate) timeout: std::time::Duration,
    pub(crate) worker_id: Uuid,
    pub(crate) pool: PgPool,
    pub(crate) run_inputs: Arc<RunInputCache>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("flow_slug", &self.flow_slug)
            .field("run_id", &self.run_id)
            .field("step_slug", &self.step_slug)
            .field("task_index", &self.task_index)
            .field("msg_id", &self.msg_id)
            .field("attempt", &self.attempt)
            .field("timeout", &self.timeout)
            .field("worker_id", &self.worker_id)
            .finish()
    }
}

impl TaskContext {
    /// The flow slug.
    pub fn flow_slug(&self) -> &str {
        &self.flow_slug
    }
    /// The run this task belongs to.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }
    /// The step slug.
    pub fn step_slug(&self) -> &str {
        &self.step_slug
    }
    /// The task's position within a map step (0 for single steps).
    pub fn task_index(&self) -> i32 {
        self.task_index
    }
    /// The pgmq message id backing this task.
    pub fn msg_id(&self) -> i64 {
        self.msg_id
    }
    /// The id of the worker running this task.
    pub fn worker_id(&self) -> Uuid {
        self.worker_id
    }
    /// Which attempt this is (1 for the first), as the database counted it
    /// when the task was claimed.
    pub fn attempt(&self) -> i32 {
        self.attempt
    }
    /// The step timeout this attempt runs under: the worker cancels the
    /// handler when it is exceeded. Taken from the database with the task
    /// (`pgflow.steps.opt_timeout`, else `pgflow.flows.opt_timeout`).
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Records a metered call (an LLM request) against this attempt in
    /// `pgflow.task_usage`, priced from `pgflow.model_prices`. Returns
    /// `false` when nothing was recorded because the task is no longer this
    /// worker's to run (it was requeued): such calls are never counted
    /// against the attempt that replaced it.
    pub async fn report_usage(&self, usage: &Usage) -> Result<bool, ApiError> {
        let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let record = api::UsageRecord {
            model: &usage.model,
            input_tokens: tokens(usage.input_tokens),
            output_tokens: tokens(usage.output_tokens),
            latency_ms: i64::try_from(usage.latency.as_millis()).unwrap_or(i64::MAX),
        };
        api::record_task_usage(
            &self.pool,
            self.run_id,
            &self.step_slug,
            self.task_index,
            self.worker_id,
            &record,
        )
        .await
    }

    /// The worker's connection pool, for handlers that want the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The run's input, read from `pgflow.runs` on first use and cached.
    /// Dependent steps get only their parents' outputs as input; this gives
    /// them the original flow input too.
    pub async fn run_input(&self) -> Result<Value, ApiError> {
        if let Some(v) = self.run_inputs.get(self.run_id) {
            return Ok(v);
        }
        let input = api::run_input(&self.pool, self.run_id)
            .await?
            .unwrap_or(Value::Null);
        self.run_inputs.put(self.run_id, input.clone());
        Ok(input)
    }
}
