-- Index on pgflow.runs (started_at desc, run_id desc): the order in which people list runs
-- (newest first). Serves the dashboard's keyset-paginated run list (and its time-range
-- filter) with an index scan and LIMIT instead of a sort of every run.
create index idx_runs_started_at on pgflow.runs (started_at desc, run_id desc);
