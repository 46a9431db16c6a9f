//! Splits a document into chunks, counts words in each chunk in parallel (a
//! map step), and aggregates the counts.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run -p pgflow --example document_pipeline
//! ```
//!
//! Installs pgmq and the pgflow schema if needed, runs a worker in-process,
//! starts one run, waits for it, prints the result. Exits non-zero on failure.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use pgflow::{Client, CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    title: String,
    text: String,
    /// Words per chunk.
    chunk_words: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChunkStats {
    words: usize,
    chars: usize,
    top_word: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AggregateInput {
    count_words: Vec<ChunkStats>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    chunks: usize,
    words: usize,
    chars: usize,
    top_words: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RunOutput {
    aggregate: Summary,
}

fn pipeline() -> Result<WorkerFlow, pgflow::FlowError> {
    WorkerFlow::builder("document_pipeline")
        .max_attempts(3)
        .timeout(10)
        .step(StepDef::single("split"), |doc: Document, _ctx| async move {
            if doc.chunk_words == 0 {
                return Err("chunk_words must be positive".to_string());
            }
            let words: Vec<&str> = doc.text.split_whitespace().collect();
            let chunks: Vec<String> = words.chunks(doc.chunk_words).map(|c| c.join(" ")).collect();
            Ok(chunks)
        })
        .step(
            StepDef::map("count_words").array("split"),
            |chunk: String, _ctx| async move {
                let mut freq: BTreeMap<String, usize> = BTreeMap::new();
                for w in chunk.split_whitespace() {
                    let w = w
                        .trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase();
                    if w.len() > 3 {
                        *freq.entry(w).or_default() += 1;
                    }
                }
                let top_word = freq
                    .iter()
                    .max_by_key(|(w, n)| (**n, std::cmp::Reverse((*w).clone())))
                    .map(|(w, _)| w.clone());
                Ok::<_, std::convert::Infallible>(ChunkStats {
                    words: chunk.split_whitespace().count(),
                    chars: chunk.chars().count(),
                    top_word,
                })
            },
        )
        .step(
            StepDef::single("aggregate").depends_on(["count_words"]),
            |input: AggregateInput, _ctx| async move {
                let stats = input.count_words;
                Ok::<_, std::convert::Infallible>(Summary {
                    chunks: stats.len(),
                    words: stats.iter().map(|s| s.words).sum(),
                    chars: stats.iter().map(|s| s.chars).sum(),
                    top_words: stats.iter().filter_map(|s| s.top_word.clone()).collect(),
                })
            },
        )
        .build()
}

async fn run() -> Result<Summary, Box<dyn std::error::Error>> {
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
        .flow(pipeline()?)
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
        .aggregate)
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
        Ok(summary) => {
            println!(
                "{} chunks, {} words, {} chars; top words: {}",
                summary.chunks,
                summary.words,
                summary.chars,
                summary.top_words.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("document_pipeline failed: {e}");
            ExitCode::FAILURE
        }
    }
}
