//! `transform`: runs a jq filter (the jaq implementation) over the step input.
//!
//! Fields: `filter` (required, a jq program) and `multiple` (default
//! `false`). With `multiple = false` the filter must yield exactly one
//! value, which is the output; no value or several values fail the task.
//! With `multiple = true` every value is collected into an array (possibly
//! empty). jq's `env`/`$ENV` are not available (the worker's environment
//! holds API keys), nor are `input`/`inputs` or module imports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{data, Compiler, Ctx, Vars};
use jaq_json::{Num, Val};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{HandlerError, SpecError};
use crate::kind::{BoxFuture, HandlerKind, PreparedHandler};
use crate::output::HandlerOutput;
use crate::spec::{bounded, field, SpecReader};
use crate::task_env::TaskEnv;

const FIELDS: &[&str] = &["filter", "multiple"];

/// Results collected with `multiple = true` before the task fails; a
/// runaway generator (`repeat(.)`) must not eat the worker's memory.
const MAX_RESULTS: usize = 100_000;

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// The `transform` kind.
pub(crate) struct Transform;

impl HandlerKind for Transform {
    fn name(&self) -> &'static str {
        "transform"
    }

    fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        let spec = SpecReader::new(spec, self.name(), FIELDS)?;
        let source = spec.required_str("filter")?;
        let multiple = spec.optional_bool("multiple")?.unwrap_or(false);
        let filter = compile(source).map_err(|e| SpecError::new(field("filter"), e))?;
        Ok(Box::new(PreparedTransform {
            source: source.to_string(),
            filter: Arc::new(filter),
            multiple,
        }))
    }
}

/// Parses and compiles a jq program with jaq's standard library, minus
/// `env` (see the module docs).
fn compile(code: &str) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs::<Data>()
        .chain(jaq_std::funs().filter(|(name, _, _)| *name != "env"))
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, File { code, path: () })
        .map_err(|errors| {
            let mut messages = Vec::new();
            for (_file, error) in errors {
                match error {
                    load::Error::Io(errs) => {
                        messages.extend(errs.into_iter().map(|(path, e)| format!("{path}: {e}")))
                    }
                    load::Error::Lex(errs) => messages.extend(
                        errs.into_iter()
                            .map(|(expect, at)| expected(code, expect.as_str(), at)),
                    ),
                    load::Error::Parse(errs) => messages.extend(
                        errs.into_iter()
                            .map(|(expect, at)| expected(code, expect.as_str(), at)),
                    ),
                }
            }
            format!("invalid jq filter: {}", messages.join("; "))
        })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let messages: Vec<String> = errors
                .into_iter()
                .flat_map(|(_file, errs)| errs)
                .map(|(name, undefined)| format!("undefined {} \"{name}\"", undefined.as_str()))
                .collect();
            format!("invalid jq filter: {}", messages.join("; "))
        })
}

/// `expected X at character N` for a lex or parse error found at `at`,
/// a slice of `code`.
fn expected(code: &str, what: &str, at: &str) -> String {
    let offset = load::span(code, at).start;
    let column = code[..offset].chars().count() + 1;
    if at.is_empty() {
        format!("expected {what} at the end")
    } else {
        format!(
            "expected {what} at character {column} (\"{}\")",
            bounded(at, 20)
        )
    }
}

struct PreparedTransform {
    source: String,
    filter: Arc<Filter>,
    multiple: bool,
}

impl std::fmt::Debug for PreparedTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTransform")
            .field("filter", &self.source)
            .field("multiple", &self.multiple)
            .finish()
    }
}

impl PreparedHandler for PreparedTransform {
    fn kind(&self) -> &'static str {
        "transform"
    }

    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>> {
        let filter = self.filter.clone();
        let multiple = self.multiple;
        // jq programs are pure CPU: keep them off the async threads. A
        // program still running at the deadline is told to stop between
        // results (it cannot be interrupted inside one).
        let stop = Arc::new(AtomicBool::new(false));
        let stop_in_thread = stop.clone();
        Box::pin(async move {
            let job = tokio::task::spawn_blocking(move || {
                evaluate(&filter, input, multiple, &stop_in_thread)
            });
            match tokio::time::timeout_at(task.deadline, job).await {
                Ok(Ok(result)) => result.map(HandlerOutput::new),
                Ok(Err(join)) => Err(HandlerError::permanent(format!(
                    "handler.filter: the jq program crashed: {join}"
                ))),
                Err(_) => {
                    stop.store(true, Ordering::Relaxed);
                    Err(HandlerError::retryable(
                        "handler.filter: the jq program did not finish before the step's deadline",
                    ))
                }
            }
        })
    }
}

fn evaluate(
    filter: &Filter,
    input: Value,
    multiple: bool,
    stop: &AtomicBool,
) -> Result<Value, HandlerError> {
    let fail = |message: String| HandlerError::permanent(format!("handler.filter: {message}"));
    let input = Val::deserialize(input).map_err(|e| fail(format!("input is not JSON: {e}")))?;
    let ctx = Ctx::<Data>::new(&filter.lut, Vars::new([]));
    let mut results = Vec::new();
    for item in filter.id.run((ctx, input)) {
        if stop.load(Ordering::Relaxed) {
            return Err(fail("stopped at the step's deadline".into()));
        }
        let value = item.map_err(|exn| match exn.get_err() {
            Ok(error) => fail(format!("jq error: {}", bounded(&error.to_string(), 500))),
            Err(exn) => match exn.get_halt() {
                Ok(code) => fail(format!("the jq program called halt (exit code {code})")),
                Err(_) => fail("the jq program stopped unexpectedly".into()),
            },
        })?;
        results.push(to_json(&value).map_err(|e| fail(format!("result is not JSON: {e}")))?);
        if !multiple && results.len() > 1 {
            return Err(fail(
                "the filter yielded more than one value; set multiple = true to collect them \
                 into an array"
                    .into(),
            ));
        }
        if results.len() > MAX_RESULTS {
            return Err(fail(format!(
                "the filter yielded more than {MAX_RESULTS} values"
            )));
        }
    }
    if multiple {
        return Ok(Value::Array(results));
    }
    results.pop().ok_or_else(|| {
        fail(
            "the filter yielded no value; set multiple = true to accept none (as an empty array)"
                .into(),
        )
    })
}

/// A jaq value as JSON. Non-finite numbers become `null`, as in jq; byte
/// strings and non-string object keys have no JSON form.
fn to_json(value: &Val) -> Result<Value, String> {
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n),
        Val::TStr(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        Val::BStr(_) => return Err("a byte string has no JSON form".into()),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Val::Obj(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map.iter() {
                let Val::TStr(key_bytes) = key else {
                    return Err(format!("object key {key} is not a string"));
                };
                object.insert(
                    String::from_utf8_lossy(key_bytes).into_owned(),
                    to_json(value)?,
                );
            }
            Value::Object(object)
        }
    })
}

fn number(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::from(*i as i64),
        Num::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        // Big integers and decimals keep their digits when serde_json can
        // hold them, and become the nearest float otherwise.
        Num::BigInt(_) | Num::Dec(_) => serde_json::from_str::<Value>(&n.to_string())
            .ok()
            .filter(Value::is_number)
            .unwrap_or(Value::Null),
    }
}
