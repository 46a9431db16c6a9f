-- Drops a flow's queue and deletes the flow with all its runs (SPEC §3.7).
SELECT pgflow.delete_flow_and_data(p_flow_slug => $1)
