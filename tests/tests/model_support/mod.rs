//! Cases for the model-based test: what a generated case is (a flow, its runs and how the
//! simulated workers misbehave), the generator, the handlers both sides agree on, and the
//! shrinker that makes a failing case small enough to read. The reference model itself is in
//! `model.rs`.

pub mod model;

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSpec {
    pub map: bool,
    pub deps: Vec<usize>,
    pub max_attempts: i32,
    pub when_exhausted: String,
    /// `(dep index, value, forbidden?)`: requires (or forbids) `{"s<dep>": [value]}`.
    pub condition: Option<(usize, i64, bool)>,
    pub when_unmet: String,
    /// Claims of a task, numbered from 1 over the whole run (retry_run does not restart the
    /// count), whose handler fails. The same for every task of the step.
    pub failing_attempts: Vec<i32>,
}

/// One generated case. Fields added after the first regressions were kept default to off,
/// so `model_regressions.json` stays readable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    pub steps: Vec<StepSpec>,
    pub input: Vec<i64>,
    /// Report successful tasks a second time with another output, in the same batch, another
    /// batch of the same round or a later round.
    pub duplicate_completions: bool,
    /// After a failed attempt, report a completion for it too, now or rounds later (when the
    /// task may be running its next attempt: the stale report then wins, see model.rs).
    pub late_completions: bool,
    /// Runs started on the flow (run `r` gets `input` with `r` added to every element); their
    /// reports share batches.
    #[serde(default = "one")]
    pub runs: usize,
    /// Seeds the driver's choices (batch splits, delays, lost tasks, cancels), so a case
    /// replays the same way when shrunk.
    #[serde(default)]
    pub driver_seed: u64,
    /// Workers lose tasks (no report), then are marked stopped and requeue_stalled_tasks
    /// takes their tasks back.
    #[serde(default)]
    pub lost_tasks: bool,
    /// Runs are cancelled at random points.
    #[serde(default)]
    pub cancels: bool,
    /// Failed runs are resumed with retry_run (at most twice each).
    #[serde(default)]
    pub retries: bool,
    /// Some rounds claim with two workers at once and report each run's batches on its own
    /// connection, concurrently.
    #[serde(default)]
    pub concurrent: bool,
    /// Some reports carry an output over `pgflow.config.max_payload_bytes` (a failed attempt).
    #[serde(default)]
    pub oversized: bool,
}

fn one() -> usize {
    1
}

pub fn slug(i: usize) -> String {
    format!("s{i:02}")
}

pub fn generate(rng: &mut StdRng) -> Case {
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
        runs: rng.gen_range(1..=3),
        driver_seed: rng.gen(),
        lost_tasks: rng.gen_bool(0.3),
        cancels: rng.gen_bool(0.2),
        retries: rng.gen_bool(0.4),
        concurrent: rng.gen_bool(0.3),
        oversized: rng.gen_bool(0.15),
    }
}

/// The input of run `r` of a case.
pub fn run_input(case: &Case, r: usize) -> Vec<i64> {
    case.input.iter().map(|x| x + r as i64).collect()
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
pub fn output_for(i: usize, spec: &StepSpec, input: &Value) -> Value {
    if spec.map {
        json!(sum_ints(input) * 2 + i as i64)
    } else {
        let len = (i % 3) + (sum_ints(input).rem_euclid(2)) as usize;
        let mut out = vec![json!(sum_ints(input) % 1000)];
        out.extend((0..len).map(|j| json!((i as i64) * 10 + j as i64)));
        json!(out)
    }
}

/// JSON containment (`@>`), as the conditions use it.
pub fn contains(a: &Value, b: &Value) -> bool {
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

// ---------------------------------------------------------------- shrinking ------------

/// Smaller variants of a case, most aggressive first.
pub fn shrink_candidates(case: &Case) -> Vec<Case> {
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
    if case.runs > 1 {
        let mut c = case.clone();
        c.runs -= 1;
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
    let flags: [fn(&mut Case) -> &mut bool; 7] = [
        |c| &mut c.duplicate_completions,
        |c| &mut c.late_completions,
        |c| &mut c.lost_tasks,
        |c| &mut c.cancels,
        |c| &mut c.retries,
        |c| &mut c.concurrent,
        |c| &mut c.oversized,
    ];
    for flag in flags {
        let mut c = case.clone();
        if *flag(&mut c) {
            *flag(&mut c) = false;
            out.push(c);
        }
    }
    out
}
