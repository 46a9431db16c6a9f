//! The program of the README's "Use it in your own Cargo project", word for
//! word (a test, `readme_own_project_matches_the_example`, keeps them equal).
//! `scripts/test` runs it against a fresh database.

use pgflow::{Client, StepDef, Worker, WorkerConfig, WorkerFlow};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?; // postgres://user:password@host:5432/db
    pgflow::db::install::install(&url).await?; // pgmq + the pgflow schema; idempotent
    let pool = pgflow::connect(&url).await?;

    let flow = WorkerFlow::builder("hello")
        .step(StepDef::single("greet"), |input: Value, _ctx| async move {
            Ok::<_, String>(format!(
                "hello, {}",
                input["name"].as_str().unwrap_or("world")
            ))
        })
        .build()?;
    let worker = Worker::new(pool.clone(), WorkerConfig::default())
        .flow(flow)
        .start()
        .await?;

    let run = Client::new(pool)
        .start_flow("hello", &json!({"name": "ada"}))
        .await?;
    let output: Value = run.wait().await?;
    println!("{output}"); // {"greet":"hello, ada"}

    // A long-lived worker would wait here: pgflow::shutdown_signal().await?;
    worker.shutdown().await?;
    Ok(())
}
