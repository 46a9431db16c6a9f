//! Repository checks (migrations up to date, module tree without cycles), in one test binary.

mod migrations_up_to_date;
mod module_tree;
