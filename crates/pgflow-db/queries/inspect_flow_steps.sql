-- The steps of a flow in definition order, with their parents (sorted) and own options
-- (NULL = inherited from the flow), for `pgflow flow show`.
SELECT s.step_slug,
       s.step_index,
       s.step_type,
       coalesce(
         (SELECT array_agg(d.dep_slug ORDER BY d.dep_slug)
            FROM pgflow.deps d
           WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug),
         '{}'::text[]) AS dependencies,
       s.opt_max_attempts,
       s.opt_base_delay,
       s.opt_timeout,
       s.opt_start_delay,
       s.required_input_pattern,
       s.forbidden_input_pattern,
       s.when_unmet,
       s.when_exhausted
FROM pgflow.steps s
WHERE s.flow_slug = $1
ORDER BY s.step_index
