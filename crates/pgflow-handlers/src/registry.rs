//! Kind name → implementation.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::SpecError;
use crate::kind::{HandlerKind, PreparedHandler};
use crate::kinds;
use crate::spec::{closest, describe};

/// The handler kinds a worker knows, by name.
///
/// ```
/// use pgflow_handlers::Registry;
/// use serde_json::json;
///
/// let registry = Registry::builtin();
/// let handler = registry
///     .prepare(&json!({ "kind": "template", "template": "Hello {{ name }}!" }))
///     .unwrap();
/// assert_eq!(handler.kind(), "template");
///
/// let err = registry.prepare(&json!({ "kind": "htp" })).unwrap_err();
/// assert_eq!(err.field(), "handler.kind");
/// assert!(err.message().contains(r#"did you mean "http"?"#));
/// ```
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn HandlerKind>>,
}

impl Registry {
    /// A registry with no kinds.
    pub fn empty() -> Self {
        Self {
            kinds: BTreeMap::new(),
        }
    }

    /// The built-in kinds: `template`, `transform`, `http`, `llm`, `exec`.
    pub fn builtin() -> Self {
        Self::empty()
            .with(kinds::template::Template)
            .with(kinds::transform::Transform)
            .with(kinds::http::Http)
            .with(kinds::llm::Llm)
            .with(kinds::exec::Exec)
    }

    /// Adds a kind, replacing any kind of the same name.
    pub fn with(mut self, kind: impl HandlerKind + 'static) -> Self {
        self.kinds.insert(kind.name(), Box::new(kind));
        self
    }

    /// The known kind names, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Validates `spec` (an object with a `kind` field) and prepares it.
    pub fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        let Some(map) = spec.as_object() else {
            return Err(SpecError::new(
                "handler",
                format!(
                    "expected an object with a \"kind\" field, got {}",
                    describe(spec)
                ),
            ));
        };
        let known = || self.kinds().collect::<Vec<_>>().join(", ");
        let kind = match map.get("kind") {
            None | Some(Value::Null) => {
                return Err(SpecError::new(
                    "handler.kind",
                    format!("missing; one of: {}", known()),
                ))
            }
            Some(Value::String(kind)) => kind,
            Some(other) => {
                return Err(SpecError::new(
                    "handler.kind",
                    format!("expected a string, got {}", describe(other)),
                ))
            }
        };
        match self.kinds.get(kind.as_str()) {
            Some(implementation) => implementation.prepare(spec),
            None => {
                let hint = closest(kind, self.kinds())
                    .map(|k| format!("did you mean \"{k}\"? "))
                    .unwrap_or_default();
                Err(SpecError::new(
                    "handler.kind",
                    format!("unknown kind \"{kind}\"; {hint}known kinds: {}", known()),
                ))
            }
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}
