-- Sets a registered flow's options (flow and steps) to a shape's; returns the changes.
SELECT pgflow.apply_flow_options(flow_slug => $1, shape => $2) AS result
