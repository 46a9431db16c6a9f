//! The reference model: pgflow's semantics for one run, in plain Rust (DAG readiness, maps,
//! retries, exhaustion modes, conditions and skips, failure, cancel_run, retry_run, the stall
//! sweep, and complete_tasks batches).
//!
//! Decisions the model pins down (the SQL must agree):
//! - The first report for a started task wins, whichever attempt sent it: a stale report from
//!   attempt N that arrives while attempt N+1 runs completes the task, and attempt N+1's own
//!   report is then a duplicate and changes nothing. Every attempt gets the same input, so
//!   any attempt's output is a valid output for the task; the worker API carries no attempt
//!   number to tell them apart.
//! - Within one complete_tasks batch, per run: reports for started map steps are recorded
//!   first (the first report per task in batch order), then those steps finish in slug order
//!   (stopping if the run ends), then every other report, one by one in (step, index, batch
//!   order), with complete_task's semantics. Runs do not affect each other.
//! - An oversized output is a failed attempt, as if the handler had failed.

use serde_json::{json, Value};

use super::{contains, run_input, slug, Case};

/// One element of a complete_tasks batch: step, task, output, oversized?
pub type BatchReport = (usize, usize, Value, bool);

#[derive(Debug, Clone, PartialEq)]
pub struct TaskModel {
    pub status: &'static str,
    /// `attempts_count`: restarts at 0 when retry_run revives a failed task.
    pub attempts: i32,
    /// Claims over the whole run; decides which claims fail (`failing_attempts`).
    pub claims: i32,
    pub requeued: i32,
    /// Parked by the stall sweep (permanently_stalled_at): started, message archived.
    pub parked: bool,
    /// The worker (round) that holds the task while it is started.
    pub worker: Option<usize>,
    pub output: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct StepModel {
    pub status: &'static str,
    pub remaining_deps: usize,
    pub initial_tasks: Option<usize>,
    pub remaining_tasks: usize,
    pub output: Option<Value>,
    pub skip_reason: Option<&'static str>,
    pub tasks: Vec<TaskModel>,
}

#[derive(Debug, Clone)]
pub struct Model<'a> {
    pub case: &'a Case,
    pub input: Vec<i64>,
    pub run_status: &'static str,
    pub remaining_steps: usize,
    pub steps: Vec<StepModel>,
    pub run_output: Option<Value>,
    /// retry_run calls that resumed the run.
    pub retries: usize,
}

impl<'a> Model<'a> {
    fn children(&self, i: usize) -> Vec<usize> {
        (0..self.case.steps.len())
            .filter(|c| self.case.steps[*c].deps.contains(&i))
            .collect()
    }

    pub fn start(case: &'a Case, run: usize) -> Self {
        let input = run_input(case, run);
        let steps = case
            .steps
            .iter()
            .map(|s| StepModel {
                status: "created",
                remaining_deps: s.deps.len(),
                initial_tasks: match (s.map, s.deps.is_empty()) {
                    (false, _) => Some(1),
                    (true, true) => Some(input.len()),
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
            input,
            run_status: "started",
            remaining_steps: case.steps.len(),
            steps,
            run_output: None,
            retries: 0,
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
    pub fn task_input(&self, i: usize, t: usize) -> Value {
        let spec = &self.case.steps[i];
        match (spec.map, spec.deps.first()) {
            (true, None) => json!(self.input[t]),
            (true, Some(d)) => self.steps[*d].output.as_ref().unwrap()[t].clone(),
            (false, None) => json!(self.input),
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
                        claims: 0,
                        requeued: 0,
                        parked: false,
                        worker: None,
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

    pub fn live(&self, i: usize, t: usize) -> bool {
        self.run_status == "started"
            && self.steps[i].status == "started"
            && self.steps[i].tasks[t].status == "started"
    }

    /// A claim handed task `t` of step `i` to `worker`.
    pub fn claimed(&mut self, i: usize, t: usize, worker: usize) {
        let task = &mut self.steps[i].tasks[t];
        assert_eq!(
            task.status, "queued",
            "claimed a task the model has not queued"
        );
        task.status = "started";
        task.attempts += 1;
        task.claims += 1;
        task.worker = Some(worker);
    }

    /// Records a completion without finishing the step; true when it was recorded.
    fn record(&mut self, i: usize, t: usize, output: Value) -> bool {
        if !self.live(i, t) {
            return false;
        }
        let task = &mut self.steps[i].tasks[t];
        task.status = "completed";
        task.output = Some(output);
        task.worker = None;
        self.steps[i].remaining_tasks -= 1;
        true
    }

    /// The step's last task completed: store its output, release children, advance.
    fn finish_step(&mut self, i: usize) {
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

    /// complete_task.
    pub fn complete(&mut self, i: usize, t: usize, output: Value, oversized: bool) {
        if oversized {
            // complete_task turns it into fail_task only for a live task.
            if self.live(i, t) {
                self.fail(i, t);
            }
        } else if self.record(i, t, output) && self.steps[i].remaining_tasks == 0 {
            self.finish_step(i);
        }
    }

    /// complete_tasks: `(step, task, output, oversized)` reports of this run, in batch order.
    pub fn complete_batch(&mut self, reports: &[BatchReport]) {
        let mut done: Vec<(usize, usize)> = vec![];
        if self.run_status == "started" {
            let started: Vec<bool> = (0..self.steps.len())
                .map(|i| self.case.steps[i].map && self.steps[i].status == "started")
                .collect();
            let mut first: Vec<(usize, usize)> = vec![];
            for (i, t, output, oversized) in reports {
                if !started[*i] || first.contains(&(*i, *t)) {
                    continue;
                }
                first.push((*i, *t));
                if !oversized && self.record(*i, *t, output.clone()) {
                    done.push((*i, *t));
                }
            }
            let mut finished: Vec<usize> = done
                .iter()
                .map(|d| d.0)
                .filter(|i| {
                    self.steps[*i].status == "started" && self.steps[*i].remaining_tasks == 0
                })
                .collect();
            finished.sort();
            finished.dedup();
            for i in finished {
                if self.run_status != "started" {
                    break;
                }
                self.finish_step(i);
            }
        }
        let mut rest: Vec<(usize, &BatchReport)> = reports
            .iter()
            .enumerate()
            .filter(|(_, r)| !done.contains(&(r.0, r.1)))
            .collect();
        rest.sort_by_key(|(ord, r)| (r.0, r.1, *ord));
        for (_, (i, t, output, oversized)) in rest {
            self.complete(*i, *t, output.clone(), *oversized);
        }
    }

    /// fail_task.
    pub fn fail(&mut self, i: usize, t: usize) {
        if self.steps[i].tasks.is_empty() {
            return;
        }
        if self.run_status == "failed" {
            let task = &mut self.steps[i].tasks[t];
            if task.status == "started" {
                task.status = "failed";
                task.worker = None;
            }
            return;
        }
        if !self.live(i, t) {
            return;
        }
        let spec = &self.case.steps[i];
        let task = &mut self.steps[i].tasks[t];
        task.worker = None;
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

    /// cancel_run; true when the run was started.
    pub fn cancel(&mut self) -> bool {
        if self.run_status != "started" {
            return false;
        }
        self.run_status = "cancelled";
        for s in &mut self.steps {
            if matches!(s.status, "created" | "started") {
                s.status = "cancelled";
            }
            for t in &mut s.tasks {
                if matches!(t.status, "queued" | "started") {
                    t.status = "cancelled";
                }
            }
        }
        true
    }

    /// retry_run; true when the run was failed.
    pub fn retry(&mut self) -> bool {
        if self.run_status != "failed" {
            return false;
        }
        self.retries += 1;
        self.run_status = "started";
        for s in &mut self.steps {
            if s.status == "failed" && s.tasks.is_empty() {
                s.status = "created";
            }
        }
        for s in &mut self.steps {
            if matches!(s.status, "failed" | "started") {
                s.status = "started";
                s.remaining_tasks = s.tasks.iter().filter(|t| t.status != "completed").count();
                for t in &mut s.tasks {
                    if t.status != "completed" {
                        if t.status == "failed" {
                            t.attempts = 0;
                        }
                        t.status = "queued";
                        t.parked = false;
                        t.worker = None;
                        t.output = None;
                    }
                }
            }
        }
        for i in 0..self.steps.len() {
            if self.steps[i].status == "started" && self.steps[i].remaining_tasks == 0 {
                self.finish_step(i);
            }
        }
        self.advance();
        true
    }

    /// requeue_stalled_tasks after the workers in `stopped` were marked stopped.
    pub fn sweep(&mut self, stopped: &[usize]) {
        for s in &mut self.steps {
            for t in &mut s.tasks {
                if t.status == "started"
                    && !t.parked
                    && t.worker.is_some_and(|w| stopped.contains(&w))
                {
                    if t.requeued < 3 {
                        t.status = "queued";
                        t.requeued += 1;
                        t.worker = None;
                    } else {
                        t.parked = true;
                    }
                }
            }
        }
    }

    /// Queued tasks a worker can claim now: the run and step are started, the message live.
    pub fn queued(&self) -> Vec<(usize, usize)> {
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
