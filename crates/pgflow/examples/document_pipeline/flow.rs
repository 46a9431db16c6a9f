//! The document pipeline flow: split a document into chunks, count the words
//! of each chunk in parallel (a map step), aggregate the counts, and join a
//! parallel `meta` branch in a final report.
//!
//! ```text
//! level 0   split (text -> chunks)        meta (title, size)
//! level 1   count_words [map over split]
//! level 2   aggregate <- count_words
//! level 3   report <- aggregate, meta      -> run output {"report": "..."}
//! ```
//!
//! This file is the one definition of the flow: the `document_pipeline`
//! example runs it, and `pgflow demo` compiles it in too (a `#[path]` module),
//! so the demo shows exactly what the example teaches.

use std::time::Duration;

use pgflow::{StepDef, WorkerFlow};
use serde::{Deserialize, Serialize};

/// The run input.
#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    /// Shown in the report.
    pub title: String,
    /// The text to count.
    pub text: String,
    /// Words per chunk (one `count_words` task per chunk).
    pub chunk_words: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChunkStats {
    words: usize,
    longest_word: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Totals {
    chunks: usize,
    words: usize,
    longest_word: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    title: String,
    chars: usize,
}

#[derive(Debug, Deserialize)]
struct AggregateInput {
    count_words: Vec<ChunkStats>,
}

#[derive(Debug, Deserialize)]
struct ReportInput {
    aggregate: Totals,
    meta: Meta,
}

/// The flow under `slug`. Each handler first sleeps a multiple of `pace`
/// (e.g. 200 ms, so live progress is visible; zero to run flat out), and
/// map tasks take different times, as real work would.
pub fn pipeline(slug: &str, pace: Duration) -> Result<WorkerFlow, pgflow::FlowError> {
    WorkerFlow::builder(slug)
        .max_attempts(3)
        .base_delay(1)
        .timeout(10)
        .step(
            StepDef::single("split"),
            move |doc: Document, _ctx| async move {
                if doc.chunk_words == 0 {
                    return Err("chunk_words must be positive".to_string());
                }
                tokio::time::sleep(pace).await;
                let words: Vec<&str> = doc.text.split_whitespace().collect();
                Ok(words
                    .chunks(doc.chunk_words)
                    .map(|c| c.join(" "))
                    .collect::<Vec<_>>())
            },
        )
        .step(
            StepDef::single("meta"),
            move |doc: Document, _ctx| async move {
                tokio::time::sleep(pace * 3).await;
                Ok::<_, String>(Meta {
                    chars: doc.text.chars().count(),
                    title: doc.title,
                })
            },
        )
        .step(
            StepDef::map("count_words").array("split"),
            move |chunk: String, ctx| async move {
                let spread = 0.75 + 0.3 * (ctx.task_index() % 5) as f64;
                tokio::time::sleep(pace.mul_f64(spread)).await;
                let words: Vec<String> = chunk
                    .split_whitespace()
                    .map(|w| {
                        w.trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase()
                    })
                    .collect();
                let longest_word = words
                    .iter()
                    .max_by_key(|w| w.len())
                    .cloned()
                    .unwrap_or_default();
                Ok::<_, String>(ChunkStats {
                    words: words.len(),
                    longest_word,
                })
            },
        )
        .step(
            StepDef::single("aggregate").depends_on(["count_words"]),
            move |input: AggregateInput, _ctx| async move {
                tokio::time::sleep(pace).await;
                let stats = input.count_words;
                Ok::<_, String>(Totals {
                    chunks: stats.len(),
                    words: stats.iter().map(|s| s.words).sum(),
                    longest_word: stats
                        .iter()
                        .map(|s| s.longest_word.clone())
                        .max_by_key(|w| w.len())
                        .unwrap_or_default(),
                })
            },
        )
        .step(
            StepDef::single("report").depends_on(["aggregate", "meta"]),
            |input: ReportInput, _ctx| async move {
                Ok::<_, String>(format!(
                    "{:?}: {} words ({} chars) in {} chunks; longest word {:?}",
                    input.meta.title,
                    input.aggregate.words,
                    input.meta.chars,
                    input.aggregate.chunks,
                    input.aggregate.longest_word
                ))
            },
        )
        .build()
}
