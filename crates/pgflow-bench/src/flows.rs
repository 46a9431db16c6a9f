//! The benchmark flows. Every handler is a no-op, so the figures measure
//! pgflow's coordination cost, not work.

use pgflow::{FlowError, StepDef, WorkerFlow};
use serde_json::Value;

/// A root map over the run input (one task per element), then a fan-in.
pub const MAP_FLOW: &str = "pgflow_bench_map";
/// Five single steps in a row.
pub const CHAIN_FLOW: &str = "pgflow_bench_chain";
/// Steps of [`CHAIN_FLOW`], in order.
pub const CHAIN_STEPS: [&str; 5] = ["s1", "s2", "s3", "s4", "s5"];

type R = Result<Value, String>;

/// `pgflow_bench_map`: `each` (map over the input array, returns the element)
/// then `fan_in` (returns the element count).
pub fn map_flow() -> Result<WorkerFlow, FlowError> {
    WorkerFlow::builder(MAP_FLOW)
        .step(
            StepDef::map("each"),
            |x: Value, _ctx| async move { R::Ok(x) },
        )
        .step(
            StepDef::single("fan_in").depends_on(["each"]),
            |input: Value, _ctx| async move {
                let n = input["each"].as_array().map_or(0, Vec::len);
                R::Ok(Value::from(n))
            },
        )
        .build()
}

/// `pgflow_bench_chain`: `s1 -> s2 -> s3 -> s4 -> s5`, each returning `true`.
pub fn chain_flow() -> Result<WorkerFlow, FlowError> {
    let mut builder = WorkerFlow::builder(CHAIN_FLOW);
    let mut previous: Option<&str> = None;
    for slug in CHAIN_STEPS {
        let mut def = StepDef::single(slug);
        if let Some(parent) = previous {
            def = def.depends_on([parent]);
        }
        builder = builder.step(
            def,
            |_: Value, _ctx| async move { R::Ok(Value::Bool(true)) },
        );
        previous = Some(slug);
    }
    builder.build()
}

/// Both flows, as the worker processes serve them.
pub fn all() -> Result<Vec<WorkerFlow>, FlowError> {
    Ok(vec![map_flow()?, chain_flow()?])
}
