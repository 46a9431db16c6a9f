//! Logging to stderr (`RUST_LOG`, default `warn`) and, with the `otel`
//! feature and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, OpenTelemetry export of pgflow's
//! spans over OTLP/HTTP with JSON bodies: one `task` span per task a worker
//! runs (flow, run id, step, task index, message id), whatever `RUST_LOG`
//! says. Spans go out in batches from the exporter's own thread; [`Telemetry::shutdown`]
//! sends what is left before the process exits.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What [`init`] set up; shut it down last.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Installs the global subscriber. sqlx is held to `error` by default: its
/// warnings are server notices such as "terminating connection" during a
/// clean shutdown, noise on a terminal.
pub fn init() -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    #[cfg(feature = "otel")]
    {
        let (otel, provider) = otel::layer();
        tracing_subscriber::registry()
            .with(stderr)
            .with(otel)
            .init();
        Telemetry { provider }
    }
    #[cfg(not(feature = "otel"))]
    {
        tracing_subscriber::registry().with(stderr).init();
        Telemetry {}
    }
}

impl Telemetry {
    /// Sends the spans still buffered (waits a few seconds at most).
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown_with_timeout(std::time::Duration::from_secs(5)) {
                eprintln!("warning: sending the last OpenTelemetry spans failed: {e}");
            }
        }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// Crates whose spans are exported (at `info` and above).
    const EXPORTED: [&str; 5] = [
        "pgflow",
        "pgflow_worker",
        "pgflow_handlers",
        "pgflow_db",
        "pgflow_cli",
    ];

    fn configured() -> bool {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    }

    /// The export layer, when configured. A configuration the exporter
    /// refuses is reported and the command runs without export.
    pub(super) fn layer<S>() -> (
        Option<Box<dyn Layer<S> + Send + Sync>>,
        Option<SdkTracerProvider>,
    )
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        if !configured() {
            return (None, None);
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("warning: OpenTelemetry export is off: {e}");
                return (None, None);
            }
        };
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "pgflow".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        let targets = EXPORTED.iter().fold(Targets::new(), |t, krate| {
            t.with_target(*krate, LevelFilter::INFO)
        });
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("pgflow"))
            .with_filter(targets)
            .boxed();
        (Some(layer), Some(provider))
    }
}
