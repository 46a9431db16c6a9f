-- Creates, verifies or recompiles a flow from its shape (SPEC §3.7).
SELECT pgflow.ensure_flow_compiled(flow_slug => $1, shape => $2, allow_data_loss => $3) AS result
