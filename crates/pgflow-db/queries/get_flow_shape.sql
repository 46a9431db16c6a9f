-- A stored flow's shape (SPEC §6.1), or NULL for an unknown flow.
SELECT CASE WHEN EXISTS (SELECT 1 FROM pgflow.flows f WHERE f.flow_slug = $1)
            THEN pgflow._get_flow_shape($1) END AS shape
