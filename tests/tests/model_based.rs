//! Model-based test of the SQL core, through the calls the production worker makes. A pure-Rust
//! reference model of pgflow's semantics (`model_support/model.rs`) and a generator of random
//! flows and random worker behaviour. Every case starts one to three runs of its flow and
//! plays rounds: claim every visible task with `claim_tasks` (sometimes two workers at once),
//! then report through randomly split `complete_tasks` batches that mix runs, repeat reports
//! (in the same batch, another batch, a later round), send late and stale reports (a failed
//! attempt's completion, a lost attempt's completion arriving while the next attempt runs)
//! and oversized outputs, interleaved with `fail_task`, `cancel_run` and `retry_run`; workers
//! lose tasks, are marked stopped and `requeue_stalled_tasks` takes the tasks back; some
//! rounds report each run's batches on its own connection, concurrently. The model replays
//! the same events; the tasks handed out must match its queued tasks every round, and at the
//! end every run, step and task (status, attempts, output) and every output must agree, for
//! completed, failed and cancelled runs alike.
//!
//! A failing case is shrunk and printed as JSON with the seed; paste it into
//! `tests/tests/model_regressions.json` to keep it. The seed changes on every run (so CI
//! keeps exploring) beside a fixed-seed test (so CI stays reproducible). Environment:
//! `PGFLOW_MODEL_SEED` replays a seed, `PGFLOW_MODEL_CASES` sets the number of random-seed
//! cases (default 900; `PGFLOW_MODEL_CASES=10000` is the long mode, see docs/testing.md).

use crate::common;
use crate::model_support;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use common::*;
use futures::future::join_all;
use futures::FutureExt;
use model_support::model::{BatchReport, Model};
use model_support::{generate, output_for, run_input, slug, Case};
use pgflow_db::api::{self, Completion};
use pgflow_tests::TestDb;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// `pgflow.config.max_payload_bytes` in the model's database: small, so an oversized output is cheap.
const PAYLOAD_LIMIT: usize = 2000;

/// Serializes the stall sweeps of concurrently running cases (see `run_case`).
static SWEEP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------- events ---------------

#[derive(Debug, Clone)]
struct Report {
    run: usize,
    step: usize,
    task: usize,
    output: Value,
    oversized: bool,
}

#[derive(Debug, Clone)]
enum Event {
    Batch(Vec<Report>),
    Fail(usize, usize, usize),
    Cancel(usize),
}

impl Event {
    fn for_run(&self, r: usize) -> Option<Event> {
        match self {
            Event::Batch(b) => {
                let mine: Vec<Report> = b.iter().filter(|x| x.run == r).cloned().collect();
                (!mine.is_empty()).then_some(Event::Batch(mine))
            }
            Event::Fail(run, ..) | Event::Cancel(run) => (*run == r).then(|| self.clone()),
        }
    }
}

fn wire_output(rep: &Report) -> Value {
    if rep.oversized {
        json!("x".repeat(PAYLOAD_LIMIT + 100))
    } else {
        rep.output.clone()
    }
}

/// Plays `events` through SQL, in order; returns cancel_run's answers in order.
async fn play_sql(pool: &PgPool, runs: &[Uuid], events: &[Event]) -> Vec<bool> {
    let mut cancels = vec![];
    for e in events {
        match e {
            Event::Batch(reports) => {
                let outputs: Vec<Value> = reports.iter().map(wire_output).collect();
                let slugs: Vec<String> = reports.iter().map(|r| slug(r.step)).collect();
                let batch: Vec<Completion> = reports
                    .iter()
                    .zip(&outputs)
                    .zip(&slugs)
                    .map(|((r, output), step_slug)| Completion {
                        run_id: runs[r.run],
                        step_slug,
                        task_index: r.task as i32,
                        output,
                    })
                    .collect();
                api::complete_tasks(pool, &batch)
                    .await
                    .unwrap_or_else(|e| panic!("complete_tasks({reports:?}) failed: {e}"));
            }
            Event::Fail(r, i, t) => {
                fail(pool, runs[*r], &slug(*i), *t as i32, "handler failed").await;
            }
            Event::Cancel(r) => {
                cancels.push(
                    sqlx::query_scalar::<_, bool>("select pgflow.cancel_run($1)")
                        .bind(runs[*r])
                        .fetch_one(pool)
                        .await
                        .unwrap(),
                );
            }
        }
    }
    cancels
}

/// Plays `events` through the models; returns cancel_run's answers in order.
fn play_model(models: &mut [Model], events: &[Event]) -> Vec<bool> {
    let mut cancels = vec![];
    for e in events {
        match e {
            Event::Batch(reports) => {
                for (r, m) in models.iter_mut().enumerate() {
                    let mine: Vec<BatchReport> = reports
                        .iter()
                        .filter(|x| x.run == r)
                        .map(|x| (x.step, x.task, x.output.clone(), x.oversized))
                        .collect();
                    if !mine.is_empty() {
                        m.complete_batch(&mine);
                    }
                }
            }
            Event::Fail(r, i, t) => models[*r].fail(*i, *t),
            Event::Cancel(r) => cancels.push(models[*r].cancel()),
        }
    }
    cancels
}

// ---------------------------------------------------------------- outcomes -------------

#[derive(Debug, PartialEq)]
struct Outcome {
    run_status: String,
    run_output: Option<Value>,
    remaining_steps: i64,
    /// Per step: status, skip reason, output (completed steps only).
    steps: Vec<(String, Option<String>, Option<Value>)>,
    /// Per task: step, index, status, attempts, output (completed tasks only).
    tasks: Vec<(String, i32, String, i32, Option<Value>)>,
}

fn model_outcome(m: &Model) -> Outcome {
    Outcome {
        run_status: m.run_status.to_string(),
        run_output: m.run_output.clone(),
        remaining_steps: m.remaining_steps as i64,
        steps: m
            .steps
            .iter()
            .map(|s| {
                (
                    s.status.to_string(),
                    s.skip_reason.map(str::to_string),
                    s.output.clone(),
                )
            })
            .collect(),
        tasks: m
            .steps
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.tasks.iter().enumerate().map(move |(t, task)| {
                    (
                        slug(i),
                        t as i32,
                        task.status.to_string(),
                        task.attempts,
                        task.output.clone(),
                    )
                })
            })
            .collect(),
    }
}

async fn sql_outcome(pool: &PgPool, run: Uuid) -> Outcome {
    let steps = sqlx::query_as(
        "select status, skip_reason, case when status = 'completed' then output end
           from pgflow.step_states where run_id = $1 order by step_slug",
    )
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap();
    let (run_status, run_output, remaining): (String, Option<Value>, i32) =
        sqlx::query_as("select status, output, remaining_steps from pgflow.runs where run_id = $1")
            .bind(run)
            .fetch_one(pool)
            .await
            .unwrap();
    let tasks = sqlx::query_as(
        "select step_slug, task_index, status, attempts_count,
                case when status = 'completed' then output end
           from pgflow.step_tasks where run_id = $1 order by step_slug, task_index",
    )
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap();
    Outcome {
        run_status,
        run_output,
        remaining_steps: remaining as i64,
        steps,
        tasks,
    }
}

/// The fields where SQL and the model differ, one line each.
fn differences(sql: &[Outcome], model: &[Outcome]) -> String {
    let mut out = String::new();
    for (r, (s, m)) in sql.iter().zip(model).enumerate() {
        let mut line = |what: &str, a: String, b: String| {
            if a != b {
                out.push_str(&format!("run {r} {what}:\n  SQL:   {a}\n  model: {b}\n"));
            }
        };
        line("status", s.run_status.clone(), m.run_status.clone());
        line(
            "output",
            format!("{:?}", s.run_output),
            format!("{:?}", m.run_output),
        );
        line(
            "remaining_steps",
            s.remaining_steps.to_string(),
            m.remaining_steps.to_string(),
        );
        for (i, (a, b)) in s.steps.iter().zip(&m.steps).enumerate() {
            line(
                &format!("step {}", slug(i)),
                format!("{a:?}"),
                format!("{b:?}"),
            );
        }
        line("tasks", format!("{:?}", s.tasks), format!("{:?}", m.tasks));
    }
    out
}

// ---------------------------------------------------------------- the driver -----------

async fn define(pool: &PgPool, flow: &str, case: &Case) {
    exec(
        pool,
        &format!("select pgflow.create_flow('{flow}', base_delay => 0)"),
    )
    .await;
    for (i, s) in case.steps.iter().enumerate() {
        let deps: Vec<String> = s.deps.iter().map(|d| slug(*d)).collect();
        let pattern = s.condition.map(|(d, v, _)| json!({ slug(d): [v] }));
        let (required, forbidden) = match s.condition {
            Some((_, _, true)) => (None, pattern),
            Some(_) => (pattern, None),
            None => (None, None),
        };
        sqlx::query(
            "select pgflow.add_step($1, $2, $3, max_attempts => $4, step_type => $5,
                required_input_pattern => $6, forbidden_input_pattern => $7,
                when_unmet => $8, when_exhausted => $9)",
        )
        .bind(flow)
        .bind(slug(i))
        .bind(&deps)
        .bind(s.max_attempts)
        .bind(if s.map { "map" } else { "single" })
        .bind(required)
        .bind(forbidden)
        .bind(&s.when_unmet)
        .bind(&s.when_exhausted)
        .execute(pool)
        .await
        .unwrap();
    }
}

async fn claim(pool: &PgPool, flow: &str, worker: Uuid, qty: i32) -> Vec<Task> {
    api::claim_tasks(pool, flow, worker, Uuid::new_v4(), qty, 30)
        .await
        .unwrap_or_else(|e| panic!("claim_tasks({flow}) failed: {e}"))
        .into_iter()
        .map(|claimed| claimed.task)
        .collect()
}

/// Runs `case` through SQL and the models side by side; returns both outcomes per run.
async fn run_case(pool: &PgPool, flow: &str, case: &Case) -> (Vec<Outcome>, Vec<Outcome>) {
    define(pool, flow, case).await;
    let mut runs = vec![];
    for r in 0..case.runs {
        runs.push(start(pool, flow, json!(run_input(case, r))).await);
    }
    let mut models: Vec<Model> = (0..case.runs).map(|r| Model::start(case, r)).collect();
    let mut rng = StdRng::seed_from_u64(case.driver_seed);
    // Reports held back to a later round: (round due, report).
    let mut pending: Vec<(usize, Report)> = vec![];
    let mut workers: Vec<Uuid> = vec![];

    for round in 0..300 {
        if case.retries {
            for (r, m) in models.iter_mut().enumerate() {
                if m.run_status == "failed" && m.retries < 2 && rng.gen_bool(0.6) {
                    let sql: bool = sqlx::query_scalar("select pgflow.retry_run($1)")
                        .bind(runs[r])
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    assert_eq!(sql, m.retry(), "retry_run of run {r}");
                }
            }
        }

        // Claim everything visible, with one worker or two at once.
        make_visible(pool, flow).await;
        let expected: Vec<(usize, usize, usize)> = models
            .iter()
            .enumerate()
            .flat_map(|(r, m)| m.queued().into_iter().map(move |(i, t)| (r, i, t)))
            .collect();
        let first_worker = workers.len();
        let mut claimed: Vec<(Task, usize)> = vec![];
        if case.concurrent && rng.gen_bool(0.5) {
            let a = worker(pool, flow).await;
            let b = worker(pool, flow).await;
            workers.extend([a, b]);
            let qty = (expected.len() as i32 / 2).max(1);
            let (ta, tb) = tokio::join!(claim(pool, flow, a, qty), claim(pool, flow, b, qty));
            claimed.extend(ta.into_iter().map(|t| (t, first_worker)));
            claimed.extend(tb.into_iter().map(|t| (t, first_worker + 1)));
            claimed.extend(
                claim(pool, flow, a, 10_000)
                    .await
                    .into_iter()
                    .map(|t| (t, first_worker)),
            );
        } else {
            let a = worker(pool, flow).await;
            workers.push(a);
            claimed.extend(
                claim(pool, flow, a, 10_000)
                    .await
                    .into_iter()
                    .map(|t| (t, first_worker)),
            );
        }
        let mut got: Vec<(usize, usize, usize, usize, Task)> = claimed
            .into_iter()
            .map(|(task, w)| {
                let r = runs.iter().position(|id| *id == task.run_id).unwrap();
                let i: usize = task.step_slug[1..].parse().unwrap();
                (r, i, task.task_index as usize, w, task)
            })
            .collect();
        got.sort_by_key(|g| (g.0, g.1, g.2));
        let got_keys: Vec<(usize, usize, usize)> = got.iter().map(|g| (g.0, g.1, g.2)).collect();
        assert_eq!(
            got_keys, expected,
            "round {round}: tasks handed out by claim_tasks vs the model's queued tasks"
        );

        // Decide every report of this round.
        let mut reports: Vec<Report> = vec![];
        let mut fails: Vec<Event> = vec![];
        let mut lost = false;
        pending.retain(|(due, rep)| {
            let now = *due <= round;
            if now {
                reports.push(rep.clone());
            }
            !now
        });
        for (r, i, t, w, task) in &got {
            let (r, i, t) = (*r, *i, *t);
            models[r].claimed(i, t, *w);
            let spec = &case.steps[i];
            let input = if !spec.map && spec.deps.is_empty() {
                task.flow_input.clone().unwrap()
            } else {
                task.input.clone()
            };
            assert_eq!(
                input,
                models[r].task_input(i, t),
                "input of run {r} {} task {t}",
                task.step_slug
            );
            let out = output_for(i, spec, &input);
            let rep = |output: Value, oversized: bool| Report {
                run: r,
                step: i,
                task: t,
                output,
                oversized,
            };
            let claims = models[r].steps[i].tasks[t].claims;
            if case.lost_tasks && models[r].steps[i].tasks[t].requeued < 3 && rng.gen_bool(0.1) {
                // The worker dies holding the task; its report may still arrive, stale.
                lost = true;
                if rng.gen_bool(0.5) {
                    pending.push((round + rng.gen_range(1..=3), rep(out, false)));
                }
            } else if spec.failing_attempts.contains(&claims) {
                fails.push(Event::Fail(r, i, t));
                if case.late_completions && rng.gen_bool(0.7) {
                    let late = rep(json!([-1]), false);
                    match rng.gen_range(0..3) {
                        0 => reports.push(late),
                        d => pending.push((round + d, late)),
                    }
                }
            } else {
                let oversized = case.oversized && rng.gen_bool(0.1);
                reports.push(rep(out, oversized));
                if case.duplicate_completions && rng.gen_bool(0.7) {
                    let dup = rep(json!([-2]), false);
                    match rng.gen_range(0..3) {
                        0 => reports.push(dup),
                        d => pending.push((round + d, dup)),
                    }
                }
            }
        }

        // Split the reports into batches, interleaved with failures and cancels.
        reports.shuffle(&mut rng);
        let mut events: Vec<Event> = vec![];
        while !reports.is_empty() {
            let n = rng.gen_range(1..=reports.len());
            events.push(Event::Batch(reports.drain(..n).collect()));
        }
        for f in fails {
            let at = rng.gen_range(0..=events.len());
            events.insert(at, f);
        }
        if case.cancels {
            for r in 0..case.runs {
                if rng.gen_bool(0.05) {
                    let at = rng.gen_range(0..=events.len());
                    events.insert(at, Event::Cancel(r));
                }
            }
        }

        // Play them: all on one connection, or each run's share on its own, concurrently.
        if case.concurrent && case.runs > 1 && rng.gen_bool(0.5) {
            let per_run: Vec<Vec<Event>> = (0..case.runs)
                .map(|r| events.iter().filter_map(|e| e.for_run(r)).collect())
                .collect();
            let sql = join_all(per_run.iter().map(|evs| play_sql(pool, &runs, evs))).await;
            for (r, evs) in per_run.iter().enumerate() {
                assert_eq!(sql[r], play_model(&mut models, evs), "cancel_run answers");
            }
        } else {
            let sql = play_sql(pool, &runs, &events).await;
            assert_eq!(sql, play_model(&mut models, &events), "cancel_run answers");
        }

        // Workers that lost tasks are declared dead; the sweep takes their tasks back.
        if lost {
            // Cases of other lanes sweep too; SKIP LOCKED lets a sweep pass over tasks another
            // sweep holds, so this one could return before those are requeued. One at a time
            // keeps a round's outcome certain.
            let _one_sweep = SWEEP.lock().await;
            let dead: Vec<usize> = (first_worker..workers.len()).collect();
            for w in &dead {
                api::mark_worker_stopped(pool, workers[*w]).await.unwrap();
            }
            let _: i32 = sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
                .fetch_one(pool)
                .await
                .unwrap();
            for m in &mut models {
                m.sweep(&dead);
            }
        }

        let retry_left = case.retries
            && models
                .iter()
                .any(|m| m.run_status == "failed" && m.retries < 2);
        if got.is_empty() && pending.is_empty() && !lost && !retry_left {
            break;
        }
    }

    let mut sql = vec![];
    for run in &runs {
        sql.push(sql_outcome(pool, *run).await);
    }
    (sql, models.iter().map(model_outcome).collect())
}

// ---------------------------------------------------------------- checking -------------

/// Runs one case; a panic inside it (a SQL error, a mismatch the driver asserts on) counts as
/// a disagreement, so the shrinker keeps going.
async fn check(pool: &PgPool, counter: &mut usize, case: &Case) -> Option<Vec<Outcome>> {
    *counter += 1;
    let flow = format!("model_{counter}");
    match AssertUnwindSafe(run_case(pool, &flow, case))
        .catch_unwind()
        .await
    {
        Ok((sql, model)) if sql == model => Some(sql),
        _ => None,
    }
}

async fn shrink(pool: &PgPool, counter: &mut usize, case: Case) -> Case {
    // The candidates' own panics are expected; only the final report should be printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let case = shrink_quietly(pool, counter, case).await;
    std::panic::set_hook(hook);
    case
}

async fn shrink_quietly(pool: &PgPool, counter: &mut usize, mut case: Case) -> Case {
    'outer: loop {
        for candidate in model_support::shrink_candidates(&case) {
            if check(pool, counter, &candidate).await.is_none() {
                case = candidate;
                continue 'outer;
            }
        }
        return case;
    }
}

async fn run_and_report(
    pool: &PgPool,
    counter: &mut usize,
    case: Case,
    origin: &str,
) -> Vec<Outcome> {
    if let Some(outcome) = check(pool, counter, &case).await {
        return outcome;
    }
    let small = shrink(pool, counter, case).await;
    *counter += 1;
    let json = serde_json::to_string(&small).unwrap();
    let (sql, model) = match AssertUnwindSafe(run_case(pool, &format!("model_{counter}"), &small))
        .catch_unwind()
        .await
    {
        Ok(outcomes) => outcomes,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{origin}: the driver failed.\nshrunk case (add it to tests/tests/model_regressions.json):\n{json}\n{why}");
        }
    };
    panic!(
        "{origin}: SQL and model disagree.\nshrunk case (add it to tests/tests/model_regressions.json):\n{}\n{}",
        json,
        differences(&sql, &model)
    );
}

/// A fresh database with a small payload limit and no heartbeat-based death (the driver
/// declares workers dead itself, by marking them stopped).
async fn model_db() -> (TestDb, PgPool) {
    let db = TestDb::new().await;
    exec(
        db.pool(),
        &format!(
            "update pgflow.config set max_payload_bytes = {PAYLOAD_LIMIT},
                                      dead_worker_after = '1 day'"
        ),
    )
    .await;
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(db.url())
        .await
        .unwrap();
    (db, pool)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` generated cases from `seed`, four at a time (each on its own flow), and
/// checks the generator still produces every kind of case.
async fn run_seed(seed: u64, cases: usize) {
    eprintln!(
        "model-based test: seed {seed}, {cases} cases (replay with PGFLOW_MODEL_SEED={seed})"
    );
    let (_db, pool) = model_db().await;
    let mut rng = StdRng::seed_from_u64(seed);
    let all: Vec<Case> = (0..cases).map(|_| generate(&mut rng)).collect();
    let lanes = 4;
    let results = join_all((0..lanes).map(|lane| {
        let pool = &pool;
        let all = &all;
        async move {
            // Flow names are unique per lane: lane + lanes * k.
            let mut counter = lane * 1_000_000;
            let mut outcomes = vec![];
            for n in (lane..all.len()).step_by(lanes) {
                let origin = format!("seed {seed} (PGFLOW_MODEL_SEED={seed}), case {n}");
                outcomes.push(run_and_report(pool, &mut counter, all[n].clone(), &origin).await);
            }
            outcomes
        }
    }))
    .await;

    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for outcome in results.iter().flatten().flatten() {
        let mut see = |k| *seen.entry(k).or_default() += 1;
        see(match outcome.run_status.as_str() {
            "completed" => "completed",
            "failed" => "failed",
            _ => "cancelled",
        });
        if outcome.steps.iter().any(|s| s.0 == "skipped") {
            see("with skips");
        }
        if outcome.tasks.iter().any(|t| t.3 > 1) {
            see("with retries");
        }
        if outcome.tasks.len() > 5 {
            see("with over 5 tasks");
        }
    }
    // Guard against a generator that stopped producing interesting cases.
    eprintln!("model-based runs: {seen:?}");
    for kind in [
        "completed",
        "failed",
        "cancelled",
        "with skips",
        "with retries",
        "with over 5 tasks",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) * 40 >= cases,
            "too few runs {kind}: {seen:?}"
        );
    }
}

#[tokio::test]
async fn random_flows_agree_with_the_reference_model() {
    let seed = env_or("PGFLOW_MODEL_SEED", rand::random::<u64>());
    run_seed(seed, env_or("PGFLOW_MODEL_CASES", 900)).await;
}

#[tokio::test]
async fn fixed_seed_flows_agree_with_the_reference_model() {
    run_seed(20261127, 200).await;
}

#[tokio::test]
async fn kept_counterexamples_still_agree_with_the_model() {
    let (_db, pool) = model_db().await;
    let cases: Vec<Case> = serde_json::from_str(include_str!("model_regressions.json")).unwrap();
    let mut counter = 0;
    for (n, case) in cases.into_iter().enumerate() {
        run_and_report(&pool, &mut counter, case, &format!("regression {n}")).await;
    }
}
