//! Fails when someone changed sql/ without regenerating migrations/.

#[test]
fn migrations_are_up_to_date_with_sql() {
    if let Err(err) = xtask::check_migrations(&xtask::workspace_root()) {
        panic!("{err}");
    }
}
