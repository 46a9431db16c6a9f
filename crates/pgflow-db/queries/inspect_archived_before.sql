-- Archived queue messages older than $1 seconds, over every flow's queue: what
-- pgflow.prune_data_older_than deletes from the archives with the same cut. Each archive is
-- its own table, so each count is a dynamic query (query_to_xml runs it and returns one row).
SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(
         format('SELECT count(*) AS c FROM pgmq.%I WHERE archived_at < %L',
                pgmq.format_table_name(f.flow_slug, 'a'), now() - make_interval(secs => $1)),
         false, true, '')))[1]::text::bigint), 0)::bigint
FROM pgflow.flows f
WHERE EXISTS (SELECT 1 FROM pgmq.list_queues() q WHERE q.queue_name = f.flow_slug)
