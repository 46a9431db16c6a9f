//! The built-in kinds, one module each.

pub(crate) mod exec;
pub(crate) mod http;
pub(crate) mod llm;
pub(crate) mod template;
pub(crate) mod transform;
