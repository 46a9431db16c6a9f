//! Flow definitions for pgflow: slugs, options, steps, conditions, the flow
//! shape sent to `pgflow.ensure_flow_compiled`, and validation. No I/O.
//!
//! A flow is built with [`FlowBuilder`] (or read from a flow file into a
//! [`FlowDef`]) and validated into a [`Flow`]; only a validated flow can be
//! turned into a [`FlowShape`], so nothing invalid ever reaches the database.
//!
//! ```
//! use pgflow_core::{FlowBuilder, StepDef};
//!
//! let flow = FlowBuilder::new("greet")
//!     .max_attempts(3)
//!     .step(StepDef::single("fetch"))
//!     .step(StepDef::map("shout").array("fetch").timeout(10))
//!     .build()
//!     .unwrap();
//! let shape = serde_json::to_value(flow.shape()).unwrap();
//! assert_eq!(shape["steps"][1]["stepType"], "map");
//! ```

mod error;
mod file;
mod flow;
mod graph;
mod shape;
mod slug;
pub mod strict_keys;

pub use error::FlowError;
pub use file::flow_def_from_value;
pub use flow::{Flow, FlowBuilder, FlowDef, FlowOptions, StepDef, StepOptions, StepType, WhenMode};
pub use shape::{FlowShape, InputPattern, ShapeStep};
pub use slug::{is_valid_slug, FLOW_SLUG_RULE, MAX_FLOW_SLUG_LEN, MAX_SLUG_LEN, STEP_SLUG_RULE};

#[cfg(test)]
mod tests;
