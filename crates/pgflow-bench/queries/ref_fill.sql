-- One row per reference client (ids 1..$1).
INSERT INTO public.pgflow_bench_ref (id) SELECT generate_series(1, $1) ON CONFLICT DO NOTHING
