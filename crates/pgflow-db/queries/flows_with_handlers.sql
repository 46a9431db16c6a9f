-- Flows with at least one built-in handler, with their step count and the steps that have
-- none (a worker serving only built-in handlers cannot run those).
SELECT f.flow_slug,
       coalesce(array_agg(s.step_slug ORDER BY s.step_index) FILTER (WHERE h.step_slug IS NULL),
                '{}') AS steps_without_handler
FROM pgflow.flows f
JOIN pgflow.steps s ON s.flow_slug = f.flow_slug
LEFT JOIN pgflow.step_handlers h ON h.flow_slug = s.flow_slug AND h.step_slug = s.step_slug
GROUP BY f.flow_slug
HAVING count(h.step_slug) > 0
ORDER BY f.flow_slug
