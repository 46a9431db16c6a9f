-- /metrics: runs per flow and status (what pgflow.runs holds now; prune removes old ones).
SELECT r.flow_slug, r.status, count(*)::bigint AS runs
FROM pgflow.runs r
GROUP BY r.flow_slug, r.status
ORDER BY r.flow_slug, r.status
