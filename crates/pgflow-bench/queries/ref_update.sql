-- The reference transaction: a single-row UPDATE, committed on its own (autocommit).
UPDATE public.pgflow_bench_ref SET v = v + 1 WHERE id = $1
