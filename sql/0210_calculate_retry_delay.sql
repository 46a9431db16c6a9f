-- replaceable
-- pgflow.calculate_retry_delay: seconds to wait before the next attempt of a failed task,
-- floor(base_delay * 2^attempts_count). attempts_count was already incremented by
-- start_tasks, so the first retry waits 2 x base. Clamped to the int range so absurd
-- option values cannot make fail_task itself fail.
create or replace function pgflow.calculate_retry_delay(base_delay numeric, attempts_count int)
returns int
language sql
immutable
set search_path = ''
as $$
  select least(floor(base_delay * power(2::numeric, attempts_count)), 2147483647)::int;
$$;
