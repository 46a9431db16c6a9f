//! Model-based test of the SQL core. A pure-Rust reference model of pgflow's semantics (DAG
//! readiness, maps, retries, exhaustion modes, conditions and skips) and a generator of
//! random flows and random worker behaviour (success, failure, duplicate completion, late
//! completion after a retry). Every generated case runs through the real SQL API and
//! through the model; final run, step and task states and all outputs must agree.
//!
//! A failing case is shrunk (fewer steps, no conditions, fewer failures, shorter input) and
//! printed as JSON; paste it into `tests/tests/model_regressions.json` to keep it as a
//! regression test. Set `PGFLOW_MODEL_CASES` to run more random cases, `PGFLOW_MODEL_SEED`
//! to pick the seed.

mod common;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use common::*;
use futures::FutureExt;
use pgflow_tests::TestDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;

// ---------------------------------------------------------------- cases ----------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StepSpec {
    map: bool,
    deps: Vec<usize>,
    max_attempts: i32,
    when_exhausted: String,
    /// `(dep index, value, forbidden?)`: requires (or forbids) `{"s<dep>": [value]}`.
    condition: Option<(usize, i64, bool)>,
    when_unmet: String,
    /// Attempts numbered from 1 that fail, per task index (the same for every task).
    failing_attempts: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Case {
    steps: Vec<StepSpec>,
    input: Vec<i64>,
    /// Complete every successful task a second time with another output.
    duplicate_completions: bool,
    /// After a failed attempt is requeued, report a late completion for it.
    late_completions: bool,
}

fn slug(i: usize) -> String {
    format!("s{i:02}")
}

fn generate(rng: &mut StdRng) -> Case {
    let n = rng.gen_range(1..=12);
    let modes = ["fail", "skip", "skip-cascade"];
    let mut steps = Vec::new();
    for i in 0..n {
        let map = rng.gen_bool(0.3);
        let mut deps: Vec<usize> = Vec::new();
        if i > 0 {
            let want = if map {
                rng.gen_range(0..=1)
            } else {
                rng.gen_range(0..=3)
            };
            for _ in 0..want {
                let d = rng.gen_range(0..i);
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
        }
        deps.sort();
        let condition = if !deps.is_empty() && rng.gen_bool(0.3) {
            let d = deps[rng.gen_range(0..deps.len())];
            Some((d, (d as i64) * 10 + rng.gen_range(0..3), rng.gen_bool(0.3)))
        } else {
            None
        };
        let max_attempts = rng.gen_range(1..=3);
        let failing_attempts = match rng.gen_range(0..6) {
            0 => (1..=max_attempts).collect(),
            1 | 2 => vec![1],
            _ => vec![],
        };
        steps.push(StepSpec {
            map,
            deps,
            max_attempts,
            when_exhausted: modes[rng.gen_range(0..3)].to_string(),
            condition,
            when_unmet: modes[rng.gen_range(0..3)].to_string(),
            failing_attempts,
        });
    }
    Case {
        steps,
        input: (0..rng.gen_range(0..4))
            .map(|_| rng.gen_range(0..9))
            .collect(),
        duplicate_completions: rng.gen_bool(0.5),
        late_completions: rng.gen_bool(0.5),
    }
}

// ---------------------------------------------------------------- handlers -------------

/// Sum of every integer in a JSON value: makes outputs depend on the exact inputs.
fn sum_ints(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::Array(a) => a.iter().map(sum_ints).sum(),
        Value::Object(o) => o.values().map(sum_ints).sum(),
        _ => 0,
    }
}

/// A step's handler: singles return an array (so any child may map over it), maps transform
/// their element.
fn output_for(i: usize, spec: &StepSpec, input: &Value) -> Value {
    if spec.map {
        json!(sum_ints(input) * 2 + i as i64)
    } else {
        let len = (i % 3) + (sum_ints(input).rem_euclid(2)) as usize;
        let mut out = vec![json!(sum_ints(input) % 1000)];
        out.extend((0..len).map(|j| json!((i as i64) * 10 + j as i64)));
        json!(out)
    }
}

fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, bv)| a.get(k).is_some_and(|av| contains(av, bv))),
        (Value::Array(a), Value::Array(b)) => {
            b.iter().all(|bv| a.iter().any(|av| contains(av, bv)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------- the model ------------

#[derive(Debug, Clone, PartialEq)]
struct TaskModel {
    status: &'static str,
    attempts: i32,
    output: Option<Value>,
}

#[derive(Debug, Clone)]
struct StepModel {
    status: &'static str,
    remaining_deps: usize,
    initial_tasks: Option<usize>,
    remaining_tasks: usize,
    output: Option<Value>,
    skip_reason: Option<&'static str>,
    tasks: Vec<TaskModel>,
}

struct Model<'a> {
    case: &'a Case,
    run_status: &'static str,
    remaining_steps: usize,
    steps: Vec<StepModel>,
    run_output: Option<Value>,
}

impl<'a> Model<'a> {
    fn children(&self, i: usize) -> Vec<usize> {
        (0..self.case.steps.len())
            .filter(|c| self.case.steps[*c].deps.contains(&i))
            .collect()
    }

    fn start(case: &'a Case) -> Self {
        let steps = case
            .steps
            .iter()
            .map(|s| StepModel {
                status: "created",
                remaining_deps: s.deps.len(),
                initial_tasks: match (s.map, s.deps.is_empty()) {
                    (false, _) => Some(1),
                    (true, true) => Some(case.input.len()),
                    (true, false) => None,
                },
                remaining_tasks: 0,
                output: None,
                skip_reason: None,
                tasks: vec![],
            })
            .collect();
        let mut m = Model {
            case,
            run_status: "started",
            remaining_steps: case.steps.len(),
            steps,
            run_output: None,
        };
        m.advance();
        m
    }

    fn step_input(&self, i: usize) -> Value {
        let mut obj = serde_json::Map::new();
        for d in &self.case.steps[i].deps {
            if self.steps[*d].status == "completed" {
                obj.insert(
                    slug(*d),
                    self.steps[*d].output.clone().unwrap_or(Value::Null),
                );
            }
        }
        Value::Object(obj)
    }

    /// What the handler of task `t` of step `i` is given.
    fn task_input(&self, i: usize, t: usize) -> Value {
        let spec = &self.case.steps[i];
        match (spec.map, spec.deps.first()) {
            (true, None) => json!(self.case.input[t]),
            (true, Some(d)) => self.steps[*d].output.as_ref().unwrap()[t].clone(),
            (false, None) => json!(self.case.input),
            (false, Some(_)) => self.step_input(i),
        }
    }

    fn release_children(&mut self, parent: usize) {
        for c in self.children(parent) {
            self.steps[c].remaining_deps -= 1;
            if self.case.steps[c].map && self.steps[c].initial_tasks.is_none() {
                let p = &self.steps[parent];
                self.steps[c].initial_tasks = match p.status {
                    "skipped" => Some(0),
                    _ if self.case.steps[parent].map => p.initial_tasks,
                    _ => p
                        .output
                        .as_ref()
                        .and_then(|o| o.as_array())
                        .map(|a| a.len()),
                };
            }
        }
    }

    fn force_skip(&mut self, i: usize, reason: &'static str) {
        let mut set = vec![i];
        let mut k = 0;
        while k < set.len() {
            for c in self.children(set[k]) {
                if !set.contains(&c) {
                    set.push(c);
                }
            }
            k += 1;
        }
        for s in set {
            if matches!(self.steps[s].status, "created" | "started") {
                self.steps[s].status = "skipped";
                self.steps[s].skip_reason =
                    Some(if s == i { reason } else { "dependency_skipped" });
                self.remaining_steps -= 1;
            }
        }
    }

    fn resolve_conditions(&mut self) -> bool {
        loop {
            if self.run_status != "started" {
                return self.run_status == "completed";
            }
            let mut unmet = vec![];
            for (i, spec) in self.case.steps.iter().enumerate() {
                let st = &self.steps[i];
                let Some((d, v, forbidden)) = spec.condition else {
                    continue;
                };
                if st.status != "created" || st.remaining_deps != 0 {
                    continue;
                }
                let has = contains(&self.step_input(i), &json!({ slug(d): [v] }));
                if has == forbidden {
                    unmet.push(i);
                }
            }
            if let Some(&f) = unmet
                .iter()
                .find(|i| self.case.steps[**i].when_unmet == "fail")
            {
                self.steps[f].status = "failed";
                self.run_status = "failed";
                return false;
            }
            let skipped: Vec<usize> = unmet
                .iter()
                .copied()
                .filter(|i| self.case.steps[*i].when_unmet == "skip")
                .collect();
            for &s in &skipped {
                self.steps[s].status = "skipped";
                self.steps[s].skip_reason = Some("condition_unmet");
                self.remaining_steps -= 1;
            }
            for &s in &skipped {
                self.release_children(s);
            }
            for &s in unmet
                .iter()
                .filter(|i| self.case.steps[**i].when_unmet == "skip-cascade")
            {
                self.force_skip(s, "condition_unmet");
            }
            if skipped.is_empty() {
                return true;
            }
        }
    }

    fn advance(&mut self) {
        loop {
            if !self.resolve_conditions() {
                return;
            }
            let wave: Vec<usize> = (0..self.steps.len())
                .filter(|i| {
                    let s = &self.steps[*i];
                    s.status == "created" && s.remaining_deps == 0 && s.initial_tasks == Some(0)
                })
                .collect();
            if wave.is_empty() {
                break;
            }
            for &i in &wave {
                self.steps[i].status = "completed";
                self.steps[i].output = if self.case.steps[i].map {
                    Some(json!([]))
                } else {
                    None
                };
                self.remaining_steps -= 1;
            }
            for &i in &wave {
                self.release_children(i);
            }
        }
        for i in 0..self.steps.len() {
            let s = &mut self.steps[i];
            if s.status == "created" && s.remaining_deps == 0 && s.initial_tasks.unwrap_or(0) > 0 {
                let n = s.initial_tasks.unwrap();
                s.status = "started";
                s.remaining_tasks = n;
                s.tasks = vec![
                    TaskModel {
                        status: "queued",
                        attempts: 0,
                        output: None
                    };
                    n
                ];
            }
        }
        self.maybe_complete();
    }

    fn maybe_complete(&mut self) {
        if self.remaining_steps == 0 && self.run_status == "started" {
            self.run_status = "completed";
            let mut out = serde_json::Map::new();
            for i in 0..self.steps.len() {
                if self.steps[i].status == "completed" && self.children(i).is_empty() {
                    out.insert(slug(i), self.steps[i].output.clone().unwrap_or(Value::Null));
                }
            }
            self.run_output = if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            };
        }
    }

    fn live(&self, i: usize, t: usize) -> bool {
        self.run_status == "started"
            && self.steps[i].status == "started"
            && self.steps[i].tasks[t].status == "started"
    }

    fn complete(&mut self, i: usize, t: usize, output: Value) {
        if !self.live(i, t) {
            return;
        }
        self.steps[i].tasks[t].status = "completed";
        self.steps[i].tasks[t].output = Some(output);
        self.steps[i].remaining_tasks -= 1;
        if self.steps[i].remaining_tasks == 0 {
            let step = &mut self.steps[i];
            step.status = "completed";
            step.output = if self.case.steps[i].map {
                Some(Value::Array(
                    step.tasks
                        .iter()
                        .map(|t| t.output.clone().unwrap())
                        .collect(),
                ))
            } else {
                step.tasks[0].output.clone()
            };
            self.remaining_steps -= 1;
            self.release_children(i);
            self.advance();
        }
    }

    fn fail(&mut self, i: usize, t: usize) {
        if !self.live(i, t) {
            return;
        }
        let spec = &self.case.steps[i];
        let task = &mut self.steps[i].tasks[t];
        if task.attempts < spec.max_attempts {
            task.status = "queued";
            return;
        }
        task.status = "failed";
        match spec.when_exhausted.as_str() {
            "fail" => {
                self.steps[i].status = "failed";
                self.run_status = "failed";
            }
            mode => {
                self.steps[i].status = "skipped";
                self.steps[i].skip_reason = Some("handler_failed");
                self.remaining_steps -= 1;
                if mode == "skip-cascade" {
                    self.force_skip(i, "handler_failed");
                    self.maybe_complete();
                } else {
                    self.release_children(i);
                    self.advance();
                }
            }
        }
    }

    /// Queued tasks a worker would read now, in the order the driver handles them.
    fn queued(&self) -> Vec<(usize, usize)> {
        if self.run_status != "started" {
            return vec![];
        }
        let mut v = vec![];
        for (i, s) in self.steps.iter().enumerate() {
            if s.status == "started" {
                for (t, task) in s.tasks.iter().enumerate() {
                    if task.status == "queued" {
                        v.push((i, t));
                    }
                }
            }
        }
        v
    }
}

// ---------------------------------------------------------------- SQL side -------------

#[derive(Debug, PartialEq)]
struct Outcome {
    run_status: String,
    run_output: Option<Value>,
    remaining_steps: i64,
    /// Per step: status, skip reason, output (completed steps only).
    steps: Vec<(String, Option<String>, Option<Value>)>,
    /// Per task of a completed run: step, index, status, attempts.
    tasks: Vec<(String, i32, String, i32)>,
}

fn model_outcome(m: &Model) -> Outcome {
    let completed = m.run_status == "completed";
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
        tasks: if completed {
            m.steps
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.tasks.iter().enumerate().map(move |(t, task)| {
                        (slug(i), t as i32, task.status.to_string(), task.attempts)
                    })
                })
                .collect()
        } else {
            vec![]
        },
    }
}

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

/// Runs `case` through SQL and the model side by side, wave by wave; returns both outcomes.
async fn run_case(pool: &PgPool, flow: &str, case: &Case) -> (Outcome, Outcome) {
    define(pool, flow, case).await;
    let w = worker(pool, flow).await;
    let run = start(pool, flow, json!(case.input)).await;
    let mut model = Model::start(case);

    for _wave in 0..200 {
        make_visible(pool, flow).await;
        let mut tasks = read_and_start(pool, flow, w, 10_000).await;
        tasks.sort_by(|a, b| (&a.step_slug, a.task_index).cmp(&(&b.step_slug, b.task_index)));
        let expected = model.queued();
        let got: Vec<(usize, usize)> = tasks
            .iter()
            .map(|t| (t.step_slug[1..].parse().unwrap(), t.task_index as usize))
            .collect();
        assert_eq!(
            got, expected,
            "tasks handed out by start_tasks vs the model's queued tasks"
        );
        if tasks.is_empty() {
            break;
        }
        for &(i, t) in &expected {
            model.steps[i].tasks[t].status = "started";
            model.steps[i].tasks[t].attempts += 1;
        }
        for task in &tasks {
            let i: usize = task.step_slug[1..].parse().unwrap();
            let t = task.task_index as usize;
            let spec = &case.steps[i];
            let attempt = model.steps[i].tasks[t].attempts;
            let input = if !spec.map && spec.deps.is_empty() {
                task.flow_input.clone().unwrap()
            } else {
                task.input.clone()
            };
            if model.live(i, t) {
                assert_eq!(
                    input,
                    model.task_input(i, t),
                    "input of {} task {t}",
                    task.step_slug
                );
            }
            if spec.failing_attempts.contains(&attempt) {
                fail(
                    pool,
                    run,
                    &task.step_slug,
                    task.task_index,
                    &format!("attempt {attempt} failed"),
                )
                .await;
                model.fail(i, t);
                if case.late_completions {
                    complete(pool, run, &task.step_slug, task.task_index, json!("late")).await;
                    if model.run_status == "started"
                        && model.steps[i].status == "started"
                        && model.steps[i].tasks[t].status == "queued"
                    {
                        // A late report for a requeued task is ignored (the task is not started).
                    } else {
                        model.complete(i, t, json!("late"));
                    }
                }
            } else {
                let out = output_for(i, spec, &input);
                complete(pool, run, &task.step_slug, task.task_index, out.clone()).await;
                model.complete(i, t, out);
                if case.duplicate_completions {
                    complete(
                        pool,
                        run,
                        &task.step_slug,
                        task.task_index,
                        json!("duplicate"),
                    )
                    .await;
                    model.complete(i, t, json!("duplicate"));
                }
            }
        }
    }

    let steps_rows: Vec<(String, Option<String>, Option<Value>)> = sqlx::query_as(
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
    let tasks: Vec<(String, i32, String, i32)> = if run_status == "completed" {
        sqlx::query_as(
            "select step_slug, task_index, status, attempts_count from pgflow.step_tasks
              where run_id = $1 order by step_slug, task_index",
        )
        .bind(run)
        .fetch_all(pool)
        .await
        .unwrap()
    } else {
        vec![]
    };
    let sql = Outcome {
        run_status,
        run_output,
        remaining_steps: remaining as i64,
        steps: steps_rows,
        tasks,
    };
    (sql, model_outcome(&model))
}

/// Smaller variants of a case, most aggressive first.
fn shrink_candidates(case: &Case) -> Vec<Case> {
    let mut out = vec![];
    let n = case.steps.len();
    for remove in (0..n).rev() {
        let mut c = case.clone();
        c.steps.remove(remove);
        for s in &mut c.steps {
            s.deps.retain(|d| *d != remove);
            for d in &mut s.deps {
                if *d > remove {
                    *d -= 1;
                }
            }
            if let Some((d, v, f)) = s.condition {
                s.condition = if d == remove {
                    None
                } else {
                    Some((if d > remove { d - 1 } else { d }, v, f))
                };
            }
            if s.map && s.deps.len() > 1 {
                s.deps.truncate(1);
            }
        }
        out.push(c);
    }
    for i in 0..n {
        if case.steps[i].condition.is_some() {
            let mut c = case.clone();
            c.steps[i].condition = None;
            out.push(c);
        }
        if !case.steps[i].failing_attempts.is_empty() {
            let mut c = case.clone();
            c.steps[i].failing_attempts.clear();
            out.push(c);
        }
    }
    if !case.input.is_empty() {
        let mut c = case.clone();
        c.input.pop();
        out.push(c);
    }
    for flag in 0..2 {
        let mut c = case.clone();
        if flag == 0 && c.duplicate_completions {
            c.duplicate_completions = false;
            out.push(c);
        } else if flag == 1 && c.late_completions {
            c.late_completions = false;
            out.push(c);
        }
    }
    out
}

/// Runs one case; a panic inside it (a SQL error, a mismatch the driver asserts on) counts as
/// a disagreement, so the shrinker keeps going.
async fn check(pool: &PgPool, counter: &mut usize, case: &Case) -> Option<Outcome> {
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

async fn shrink(pool: &PgPool, counter: &mut usize, mut case: Case) -> Case {
    'outer: loop {
        for candidate in shrink_candidates(&case) {
            if check(pool, counter, &candidate).await.is_none() {
                case = candidate;
                continue 'outer;
            }
        }
        return case;
    }
}

async fn run_and_report(pool: &PgPool, counter: &mut usize, case: Case, origin: &str) -> Outcome {
    if let Some(outcome) = check(pool, counter, &case).await {
        return outcome;
    }
    let small = shrink(pool, counter, case).await;
    *counter += 1;
    let (sql, model) = run_case(pool, &format!("model_{counter}"), &small).await;
    panic!(
        "{origin}: SQL and model disagree.\nshrunk case (add it to tests/tests/model_regressions.json):\n{}\nSQL:   {sql:?}\nmodel: {model:?}",
        serde_json::to_string(&small).unwrap()
    );
}

#[tokio::test]
async fn random_flows_agree_with_the_reference_model() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let seed: u64 = std::env::var("PGFLOW_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261127);
    let cases: usize = std::env::var("PGFLOW_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counter = 0;
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for n in 0..cases {
        let case = generate(&mut rng);
        let outcome =
            run_and_report(pool, &mut counter, case, &format!("seed {seed}, case {n}")).await;
        *seen
            .entry(if outcome.run_status == "completed" {
                "completed"
            } else {
                "failed"
            })
            .or_default() += 1;
        if outcome.steps.iter().any(|s| s.0 == "skipped") {
            *seen.entry("with skips").or_default() += 1;
        }
        if outcome.tasks.iter().any(|t| t.3 > 1) {
            *seen.entry("with retries").or_default() += 1;
        }
        if outcome.tasks.len() > 5 {
            *seen.entry("with over 5 tasks").or_default() += 1;
        }
    }
    // Guard against a generator that stopped producing interesting cases.
    eprintln!("model-based cases: {seen:?}");
    for kind in [
        "completed",
        "failed",
        "with skips",
        "with retries",
        "with over 5 tasks",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) * 20 >= cases,
            "too few cases {kind}: {seen:?}"
        );
    }
}

#[tokio::test]
async fn kept_counterexamples_still_agree_with_the_model() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let cases: Vec<Case> = serde_json::from_str(include_str!("model_regressions.json")).unwrap();
    let mut counter = 0;
    for (n, case) in cases.into_iter().enumerate() {
        run_and_report(pool, &mut counter, case, &format!("regression {n}")).await;
    }
}
