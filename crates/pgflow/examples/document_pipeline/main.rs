//! Splits a document into chunks, counts words in each chunk in parallel (a
//! map step), aggregates the counts and reports them with the document's
//! size (the flow is in `flow.rs`; `pgflow demo` runs the same flow).
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run -p pgflow --example document_pipeline
//! ```
//!
//! Installs pgmq and the pgflow schema if needed, runs a worker in-process,
//! starts one run, waits for it, prints the result. Exits non-zero on failure.

mod flow;

use std::process::ExitCode;
use std::time::Duration;

use pgflow::{Client, CompileMode, Worker, WorkerConfig};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;

use flow::Document;

/// The run output: the leaf step's result.
#[derive(Debug, Deserialize)]
struct RunOutput {
    report: String,
}

async fn run() -> Result<String, Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL to a PostgreSQL URL")?;
    let report = pgflow::db::install::install(&url).await?;
    tracing::info!(?report, "schema ready");

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await?;
    let config = WorkerConfig {
        // A demo owns its flow, so recompiling on changes is what we want.
        compile_mode: CompileMode::Development,
        function_name: "document_pipeline_example".into(),
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    };
    let worker = Worker::new(pool.clone(), config)
        .flow(flow::pipeline("document_pipeline", Duration::ZERO)?)
        .start()
        .await?;

    let doc = Document {
        title: "On workflows".into(),
        text: "Workflows coordinate steps. Steps depend on other steps, and maps fan out \
               over arrays. Postgres stores every state transition, so workers may crash \
               and restart while the workflow keeps going. Queues deliver tasks; workers \
               report results; the database decides what runs next."
            .into(),
        chunk_words: 8,
    };
    println!("processing {:?}", doc.title);
    let client = Client::new(pool);
    let handle = client.start_flow("document_pipeline", &doc).await?;
    let result = tokio::time::timeout(Duration::from_secs(60), handle.wait::<RunOutput>()).await;
    worker.shutdown().await?;
    Ok(result
        .map_err(|_| "run did not finish within 60 s")??
        .report)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .init();
    match run().await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("document_pipeline failed: {e}");
            ExitCode::FAILURE
        }
    }
}
