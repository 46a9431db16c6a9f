-- The reference workload's table: one row per client, so clients never contend on a row.
CREATE TABLE IF NOT EXISTS public.pgflow_bench_ref (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0)
