//! The pgflow worker: runs step handlers for one or more flows.
//!
//! At start the worker compiles each flow's definition
//! (`ensure_flow_compiled`, per [`CompileMode`]), registers one row in
//! `pgflow.workers` per flow (with a fresh worker id), then per flow reads
//! the queue and claims tasks with `start_tasks` (woken by `LISTEN
//! pgflow_tasks`, with a fallback poll), runs handlers with bounded
//! concurrency and reports with `complete_tasks` (batched) / `fail_task`. Heartbeats and
//! the fleet-wide stalled-task sweeper run on their own timers. Database
//! errors are logged and retried with capped exponential backoff.
//!
//! ```no_run
//! use pgflow_worker::{CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
//!
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let flow = WorkerFlow::builder("greet")
//!     .step(StepDef::single("hello"), |name: String, _ctx| async move {
//!         Ok::<_, std::io::Error>(format!("hello {name}"))
//!     })
//!     .build()?;
//! let config = WorkerConfig { compile_mode: CompileMode::Development, ..Default::default() };
//! // Runs until SIGINT/SIGTERM, then finishes in-flight tasks and marks itself stopped.
//! Worker::new(pool, config).flow(flow).run_until_signal().await?;
//! # Ok(()) }
//! ```

mod builtin;
mod config;
mod executor;
mod flow;
mod handler;
mod maintenance;
mod metrics;
mod poller;
mod stored;
mod timing;
mod wakeup;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgflow_db::api::{self, ApiError, CompileStatus};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use uuid::Uuid;

pub use builtin::BuiltinHandler;
pub use config::{CompileMode, WorkerConfig};
pub use flow::{WorkerFlow, WorkerFlowBuilder};
pub use handler::{BoxFuture, HandlerFailure, TaskContext};
pub use maintenance::SWEEP_LOCK_KEY;
pub use metrics::WorkerMetrics;
pub use pgflow_core::{Flow, FlowError, StepDef, StepType, WhenMode};
pub use pgflow_handlers::{Resources, Usage};
pub use stored::LoadFlowError;

use executor::{completion_buffer, Executor};
use handler::RunInputCache;
use wakeup::Wakeup;

/// Why a worker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// [`Worker::start`] was called without flows.
    #[error("no flows registered with the worker")]
    NoFlows,
    /// In production mode the stored flow differs from this definition.
    #[error("flow {flow:?} in the database differs from this worker's definition (use a new flow slug, or CompileMode::Development to recompile and drop its runs): {}", differences.join("; "))]
    ShapeMismatch {
        /// The flow slug.
        flow: String,
        /// The differences reported by `ensure_flow_compiled`, naming the
        /// worker's definition and the database, e.g. `Step count differs: 3
        /// in the worker's definition, 2 in the database`.
        differences: Vec<String>,
    },
    /// A database call failed during startup or shutdown.
    #[error(transparent)]
    Db(#[from] ApiError),
    /// Installing the signal handlers failed.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[from] std::io::Error),
}

/// A worker being configured. See the [crate docs](crate).
pub struct Worker {
    pool: PgPool,
    config: WorkerConfig,
    flows: Vec<WorkerFlow>,
}

impl Worker {
    /// A worker using `pool`. Size the pool for one reading connection per
    /// flow plus room for reports (e.g. `max_concurrent` + 2); with
    /// [`WorkerConfig::listen`] (the default) the worker opens one more
    /// connection of its own for `LISTEN`. Give the pool a short
    /// `acquire_timeout` (a few seconds) so outages surface quickly and the
    /// worker's backoff takes over. Without `listen`, idle long polls last up
    /// to `max_poll_seconds`; raise sqlx's slow-statement threshold
    /// (`PgConnectOptions::log_slow_statements`) to keep them out of the logs.
    pub fn new(pool: PgPool, config: WorkerConfig) -> Self {
        Worker {
            pool,
            config,
            flows: Vec::new(),
        }
    }

    /// Adds a flow to serve.
    pub fn flow(mut self, flow: WorkerFlow) -> Self {
        self.flows.push(flow);
        self
    }

    /// Compiles and registers every flow, then starts polling. Returns once
    /// the worker runs; call [`RunningWorker::shutdown`] to stop it.
    pub async fn start(self) -> Result<RunningWorker, WorkerError> {
        if self.flows.is_empty() {
            return Err(WorkerError::NoFlows);
        }
        for flow in &self.flows {
            compile(&self.pool, flow, self.config.compile_mode).await?;
        }

        let stop = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let mut services = JoinSet::new();
        let mut worker_ids = Vec::new();
        let live_pollers = Arc::new(AtomicUsize::new(self.flows.len()));
        // Through a transaction-mode pooler a LISTEN "succeeds" but nothing is
        // ever delivered: without a direct listen address, long-poll instead.
        let listen_options = match &self.config.listen_options {
            Some(options) => Some(options.clone()),
            None if pgflow_db::pool::pooler_mode() => {
                if self.config.listen {
                    info!(
                        "pooler mode and no listen URL: not listening for task notifications; \
                         polling with pgflow.read_with_poll instead"
                    );
                }
                None
            }
            None => Some((*self.pool.connect_options()).clone()),
        };
        let listen = self.config.listen && listen_options.is_some();
        let wakeups: Option<wakeup::Wakeups> = listen.then(|| {
            Arc::new(
                self.flows
                    .iter()
                    .map(|f| (f.flow.slug().to_string(), Arc::new(Wakeup::default())))
                    .collect::<HashMap<_, _>>(),
            )
        });
        if let (Some(wakeups), Some(listen_options)) = (&wakeups, listen_options) {
            services.spawn(wakeup::listen_loop(
                listen_options,
                wakeups.clone(),
                self.config.max_backoff,
                stop.clone(),
            ));
        }
        for flow in self.flows {
            let slug = flow.flow.slug().to_string();
            let worker_id = Uuid::new_v4();
            // The worker row must exist before start_tasks names it (FK).
            api::register_worker(&self.pool, &slug, worker_id, &self.config.function_name).await?;
            if let Some(grace) = self.config.dead_worker_after {
                api::set_worker_dead_after(&self.pool, worker_id, grace).await?;
            }
            info!(flow = %slug, %worker_id, "worker registered");
            worker_ids.push(worker_id);

            let wakeup = wakeups.as_ref().and_then(|w| w.get(&slug).cloned());
            let (completions, completions_rx) = if self.config.completion_batch_size > 1 {
                let capacity = self
                    .config
                    .completion_batch_size
                    .max(self.config.max_concurrent);
                let (tx, rx) = completion_buffer(capacity);
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let exec = Arc::new(Executor {
                flow: Arc::new(flow),
                pool: self.pool.clone(),
                worker_id,
                run_inputs: Arc::new(RunInputCache::default()),
                hard_stop: hard_stop.clone(),
                max_backoff: self.config.max_backoff,
                completions,
                wakeup: wakeup.clone(),
                metrics: self.config.metrics.clone(),
            });
            let stop_polling = stop.child_token();
            let drained = CancellationToken::new();
            let (cfg, poll_stop, done) =
                (self.config.clone(), stop_polling.clone(), drained.clone());
            let (live, stop_all) = (live_pollers.clone(), stop.clone());
            services.spawn(async move {
                poller::poll_loop(exec, cfg, poll_stop, wakeup, completions_rx).await;
                done.cancel();
                // The last poller to finish (e.g. every flow deprecated)
                // stops the rest too, so `wait` returns.
                if live.fetch_sub(1, Ordering::SeqCst) == 1 {
                    stop_all.cancel();
                }
            });
            services.spawn(maintenance::heartbeat_loop(
                self.pool.clone(),
                worker_id,
                self.config.heartbeat_interval,
                stop_polling,
                drained,
            ));
        }
        if let Some(interval) = self.config.sweep_interval {
            services.spawn(maintenance::sweeper_loop(
                self.pool.clone(),
                interval,
                stop.clone(),
            ));
        }
        Ok(RunningWorker {
            pool: self.pool,
            stop,
            hard_stop,
            services,
            worker_ids,
            grace: self.config.shutdown_grace,
        })
    }

    /// Starts, runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), WorkerError> {
        let running = self.start().await?;
        shutdown_signal().await?;
        info!("shutdown signal received");
        running.shutdown().await
    }
}

async fn compile(pool: &PgPool, flow: &WorkerFlow, mode: CompileMode) -> Result<(), WorkerError> {
    let allow_data_loss = match mode {
        CompileMode::Skip => return Ok(()),
        CompileMode::Development => true,
        CompileMode::Production => false,
    };
    let slug = flow.flow.slug();
    let outcome =
        api::ensure_flow_compiled(pool, slug, &flow.flow.shape().to_json(), allow_data_loss)
            .await?;
    match outcome.status {
        CompileStatus::Mismatch => Err(WorkerError::ShapeMismatch {
            flow: slug.to_string(),
            // Name the sides: upstream's text says "3 vs 2", "first shape".
            differences: outcome.differences_between("worker's definition", "database"),
        }),
        CompileStatus::Recompiled => {
            warn!(flow = %slug, differences = ?outcome.differences, "flow recompiled; its previous runs were deleted");
            Ok(())
        }
        status => {
            info!(flow = %slug, ?status, "flow definition ready");
            Ok(())
        }
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> Result<(), std::io::Error> {
    shutdown_signal_listener()?.await;
    Ok(())
}

/// Like [`shutdown_signal`], but listening from the moment it is called: a
/// signal that arrives before the returned future is awaited (e.g. during
/// start-up) is not lost, and does not kill the process with the default
/// action either.
pub fn shutdown_signal_listener(
) -> Result<impl std::future::Future<Output = ()> + Send, std::io::Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// A started worker. Dropping it without [`RunningWorker::shutdown`] aborts
/// its tasks (the sweeper later requeues anything left started).
pub struct RunningWorker {
    pool: PgPool,
    stop: CancellationToken,
    hard_stop: CancellationToken,
    services: JoinSet<()>,
    worker_ids: Vec<Uuid>,
    grace: Duration,
}

impl RunningWorker {
    /// The ids of the `pgflow.workers` rows this worker registered, one per
    /// flow, in registration order.
    pub fn worker_ids(&self) -> &[Uuid] {
        &self.worker_ids
    }

    /// A token that starts a graceful shutdown when cancelled (e.g. from a
    /// signal handler task); then await [`RunningWorker::wait`].
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops reading, lets in-flight tasks finish within the grace period,
    /// then marks every worker row stopped.
    pub async fn shutdown(self) -> Result<(), WorkerError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the worker stops (after its stop token is cancelled, or
    /// every flow's worker was deprecated), then marks it stopped.
    pub async fn wait(mut self) -> Result<(), WorkerError> {
        let stop = self.stop.clone();
        let hard_stop = self.hard_stop.clone();
        let grace = self.grace;
        // The grace timer starts when shutdown starts and never completes by
        // itself, so the select below always ends through the drain.
        let timer = async move {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
            std::future::pending::<()>().await
        };
        let services = &mut self.services;
        let drain = async move {
            while let Some(done) = services.join_next().await {
                if let Err(e) = done {
                    error!(error = %e, "worker service ended abnormally");
                }
            }
        };
        tokio::select! {
            _ = drain => {}
            _ = timer => {}
        }
        self.stop.cancel();
        let mut result = Ok(());
        for worker_id in &self.worker_ids {
            // Best effort with a bound: the database may be down at exit.
            let marked = tokio::time::timeout(
                Duration::from_secs(5),
                api::mark_worker_stopped(&self.pool, *worker_id),
            )
            .await;
            match marked {
                Ok(Ok(())) => info!(%worker_id, "worker stopped"),
                Ok(Err(e)) => {
                    warn!(%worker_id, error = %e, "mark_worker_stopped failed");
                    result = Err(WorkerError::Db(e));
                }
                Err(_) => warn!(%worker_id, "mark_worker_stopped timed out"),
            }
        }
        result
    }
}
