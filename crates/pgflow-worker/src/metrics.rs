//! Opt-in Prometheus metrics of one worker process (`prometheus-client`):
//! what its handlers did and how its claims went. Register them in the
//! application's registry and set [`WorkerConfig::metrics`](crate::WorkerConfig::metrics);
//! `pgflow worker --metrics-listen ADDR` serves them on `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pgflow_worker_tasks_total` | counter | `flow`, `step`, `outcome` (`completed`, `retried`, `failed`) |
//! | `pgflow_worker_handler_duration_seconds` | histogram | `flow`, `step` |
//! | `pgflow_worker_claim_batch_size` | histogram | `flow` |
//! | `pgflow_worker_claim_duration_seconds` | histogram | `flow` |
//! | `pgflow_worker_tasks_in_flight` | gauge | `flow` |
//!
//! An outcome counts what this worker reported and the database accepted:
//! `retried` is a failed attempt with attempts left, `failed` one without.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a task outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    flow: String,
    step: String,
    outcome: &'static str,
}

/// Labels of a step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    flow: String,
    step: String,
}

/// Labels of a flow.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    flow: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A task attempt's end as the database recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Retried,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
        }
    }
}

/// The worker's metrics; cheap to clone (every clone updates the same series).
#[derive(Clone, Debug)]
pub struct WorkerMetrics(Arc<Series>);

#[derive(Debug)]
struct Series {
    tasks: Family<OutcomeLabels, Counter>,
    handler_seconds: Histograms<StepLabels>,
    claim_batch: Histograms<FlowLabels>,
    claim_seconds: Histograms<FlowLabels>,
    in_flight: Family<FlowLabels, Gauge>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn batch_histogram() -> Histogram {
    // 1 .. 512 tasks.
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

impl WorkerMetrics {
    /// Creates the metrics and registers them in `registry` (names start
    /// with `pgflow_worker_`).
    pub fn register(registry: &mut Registry) -> Self {
        let series = Series {
            tasks: Family::default(),
            handler_seconds: Family::new_with_constructor(seconds_histogram),
            claim_batch: Family::new_with_constructor(batch_histogram),
            claim_seconds: Family::new_with_constructor(seconds_histogram),
            in_flight: Family::default(),
        };
        registry.register(
            "pgflow_worker_tasks",
            "Task attempts this worker reported, by outcome",
            series.tasks.clone(),
        );
        registry.register(
            "pgflow_worker_handler_duration_seconds",
            "How long handlers ran, per step",
            series.handler_seconds.clone(),
        );
        registry.register(
            "pgflow_worker_claim_batch_size",
            "Tasks per successful claim (empty claims included)",
            series.claim_batch.clone(),
        );
        registry.register(
            "pgflow_worker_claim_duration_seconds",
            "How long a claim took, from the first call to its reply",
            series.claim_seconds.clone(),
        );
        registry.register(
            "pgflow_worker_tasks_in_flight",
            "Tasks whose handler is running",
            series.in_flight.clone(),
        );
        WorkerMetrics(Arc::new(series))
    }

    pub(crate) fn handler_started(&self, flow: &str) {
        self.0.in_flight.get_or_create(&flow_labels(flow)).inc();
    }

    pub(crate) fn handler_finished(&self, flow: &str, step: &str, took: Duration) {
        self.0.in_flight.get_or_create(&flow_labels(flow)).dec();
        self.0
            .handler_seconds
            .get_or_create(&StepLabels {
                flow: flow.to_string(),
                step: step.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn reported(&self, flow: &str, step: &str, outcome: Outcome, n: u64) {
        self.0
            .tasks
            .get_or_create(&OutcomeLabels {
                flow: flow.to_string(),
                step: step.to_string(),
                outcome: outcome.label(),
            })
            .inc_by(n);
    }

    pub(crate) fn claimed(&self, flow: &str, tasks: usize, took: Duration) {
        let labels = flow_labels(flow);
        self.0
            .claim_batch
            .get_or_create(&labels)
            .observe(tasks as f64);
        self.0
            .claim_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

fn flow_labels(flow: &str) -> FlowLabels {
    FlowLabels {
        flow: flow.to_string(),
    }
}
