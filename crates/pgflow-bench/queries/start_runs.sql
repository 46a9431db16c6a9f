-- Starts $2 runs of flow $1 in one statement (one transaction), inputs {"i": 1..$2}.
SELECT r.run_id
FROM generate_series(1, $2) AS g(i)
CROSS JOIN LATERAL pgflow.start_flow(flow_slug => $1, input => jsonb_build_object('i', g.i)) AS r
