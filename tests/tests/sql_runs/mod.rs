//! Running flows through the SQL API alone: start_flow, start_tasks, complete_task,
//! fail_task and the cascade helpers, as a worker (or a person at psql) drives them.
//! One module per behaviour; test names read as sentences under it, e.g.
//! `map_steps::dependent_map_gets_its_count_from_the_parent_array`.

mod fixtures;

mod claiming_tasks;
mod completing_runs;
mod failing_tasks;
mod helper_functions;
mod map_steps;
mod retrying_and_cascading;
mod starting_runs;
