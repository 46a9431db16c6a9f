//! Handler kinds against real parts: HTTP servers bound to 127.0.0.1:0 by
//! each test, real child processes.

mod exec;
mod http;
mod llm;
mod secrets;
mod spec_errors;
mod support;
mod template;
mod transform;
