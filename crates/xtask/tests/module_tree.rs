//! The modules of every crate form a tree (no import cycles).

#[test]
fn every_crates_modules_form_a_tree() {
    let cycles = xtask::module_tree::cycles(&xtask::workspace_root()).unwrap();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}
