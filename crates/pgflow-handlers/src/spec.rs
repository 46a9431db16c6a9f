//! Reading a handler spec field by field: each read names the field, checks
//! its type, and unknown fields are refused with the closest known name.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::SpecError;

/// The path of a top-level spec field, e.g. `handler.url`.
pub(crate) fn field(name: &str) -> String {
    format!("handler.{name}")
}

/// A JSON value as an error message shows it: its type and a bounded
/// rendering, e.g. `a string ("5s")`.
pub(crate) fn describe(value: &Value) -> String {
    let shown = || bounded(&value.to_string(), 60);
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(_) => format!("a number ({})", shown()),
        Value::String(_) => format!("a string ({})", shown()),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// At most `max` characters of `text`, with `...` when cut.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// The candidate most like `word`, when one is close enough to be a typo.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// One spec object being read by a kind.
pub(crate) struct SpecReader<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> SpecReader<'a> {
    /// Checks that `spec` is an object whose keys are `kind` and `fields`.
    pub(crate) fn new(spec: &'a Value, kind: &str, fields: &[&str]) -> Result<Self, SpecError> {
        let map = spec.as_object().ok_or_else(|| {
            SpecError::new(
                "handler",
                format!("expected an object, got {}", describe(spec)),
            )
        })?;
        for key in map.keys() {
            if key != "kind" && !fields.contains(&key.as_str()) {
                let hint = closest(key, fields.iter().copied())
                    .map(|f| format!("did you mean \"{f}\"? "))
                    .unwrap_or_default();
                return Err(SpecError::new(
                    field(key),
                    format!(
                        "unknown field for kind \"{kind}\"; {hint}fields: {}",
                        fields.join(", ")
                    ),
                ));
            }
        }
        Ok(Self { map })
    }

    /// The field's value; `null` counts as absent (YAML `~`).
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn required_str(&self, name: &str) -> Result<&'a str, SpecError> {
        self.optional_str(name)?
            .ok_or_else(|| SpecError::new(field(name), "missing (required)"))
    }

    pub(crate) fn optional_str(&self, name: &str) -> Result<Option<&'a str>, SpecError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    pub(crate) fn optional_bool(&self, name: &str) -> Result<Option<bool>, SpecError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(name, "true or false", other)),
        }
    }

    /// A whole number of at least 1.
    pub(crate) fn optional_positive_int(&self, name: &str) -> Result<Option<u64>, SpecError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v >= 1 => Ok(Some(v)),
                _ => Err(wrong_type(
                    name,
                    "a whole number of at least 1",
                    &Value::Number(n.clone()),
                )),
            },
            Some(other) => Err(wrong_type(name, "a whole number of at least 1", other)),
        }
    }

    /// A number within `min..=max`.
    pub(crate) fn optional_number_in(
        &self,
        name: &str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, SpecError> {
        let expected = || format!("a number from {min} to {max}");
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => match n.as_f64() {
                Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
                _ => Err(wrong_type(name, &expected(), v)),
            },
            Some(other) => Err(wrong_type(name, &expected(), other)),
        }
    }

    /// A positive number of seconds (fractions allowed).
    pub(crate) fn optional_seconds(&self, name: &str) -> Result<Option<Duration>, SpecError> {
        const EXPECTED: &str = "a number of seconds greater than 0";
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => n
                .as_f64()
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .map(Some)
                .ok_or_else(|| wrong_type(name, EXPECTED, v)),
            Some(other) => Err(wrong_type(name, EXPECTED, other)),
        }
    }

    /// One of `choices`, exactly as written there.
    pub(crate) fn optional_choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, SpecError> {
        let Some(given) = self.optional_str(name)? else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|c| **c == given)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                let hint = closest(given, choices.iter().copied())
                    .map(|c| format!("did you mean \"{c}\"? "))
                    .unwrap_or_default();
                SpecError::new(
                    field(name),
                    format!(
                        "\"{}\" is not one of {}; {hint}",
                        bounded(given, 40),
                        choices.join(", ")
                    )
                    .trim_end_matches([';', ' '])
                    .to_string(),
                )
            })
    }

    /// An object of string values, in the object's order.
    pub(crate) fn optional_string_map(
        &self,
        name: &str,
    ) -> Result<Vec<(&'a str, &'a str)>, SpecError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    other => Err(SpecError::new(
                        format!("{}.{k}", field(name)),
                        format!("expected a string, got {}", describe(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, "an object of strings", other)),
        }
    }

    /// An array of strings (possibly empty).
    pub(crate) fn optional_string_list(&self, name: &str) -> Result<Vec<&'a str>, SpecError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(SpecError::new(
                        format!("{}[{i}]", field(name)),
                        format!("expected a string, got {}", describe(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, "an array of strings", other)),
        }
    }
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> SpecError {
    SpecError::new(
        field(name),
        format!("expected {expected}, got {}", describe(got)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        let fields = ["url", "method", "headers", "timeout"];
        assert_eq!(closest("ur", fields), Some("url"));
        assert_eq!(closest("header", fields), Some("headers"));
        assert_eq!(closest("timout", fields), Some("timeout"));
        assert_eq!(closest("zzz", fields), None);
    }

    #[test]
    fn bounded_cuts_on_char_boundaries() {
        assert_eq!(bounded("héllo", 2), "hé...");
        assert_eq!(bounded("hi", 2), "hi");
    }
}
