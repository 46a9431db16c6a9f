-- The built-in handler specs of a flow's steps, in step order.
SELECT h.step_slug, h.spec
FROM pgflow.step_handlers h
JOIN pgflow.steps s ON s.flow_slug = h.flow_slug AND s.step_slug = h.step_slug
WHERE h.flow_slug = $1
ORDER BY s.step_index
