//! The README's "Use it in your own Cargo project" program is the example
//! `examples/own_project.rs` (which `scripts/test` runs), so the snippet a
//! new user pastes is known to compile and run.

/// The first ```` ```lang ```` block after `heading` in `text`.
fn block_after<'t>(text: &'t str, heading: &str, lang: &str) -> &'t str {
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let fence = format!("```{lang}\n");
    let start = at
        + text[at..]
            .find(&fence)
            .expect("a code block after the heading")
        + fence.len();
    let len = text[start..].find("```").expect("the block ends");
    &text[start..start + len]
}

#[test]
fn readme_own_project_matches_the_example() {
    let readme = include_str!("../../../README.md");
    let example = include_str!("../examples/own_project.rs");
    // The README shows the program without its `//!` header.
    let body: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let shown = block_after(readme, "## Use it in your own Cargo project", "rust");
    assert_eq!(
        shown, body,
        "README's program differs from crates/pgflow/examples/own_project.rs: copy the example into README"
    );
}

#[test]
fn readme_dependency_lines_name_this_workspace_s_versions() {
    let readme = include_str!("../../../README.md");
    let deps = block_after(readme, "## Use it in your own Cargo project", "toml");
    let workspace = include_str!("../../../Cargo.toml");
    for name in ["tokio", "serde_json"] {
        let line = deps
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("README's dependencies lack {name}"));
        let version = line.split('"').nth(1).expect("a quoted version");
        let pinned = workspace
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .expect("the workspace pins it");
        assert!(
            pinned.contains(&format!("\"{version}")),
            "README asks for {name} {version}, the workspace has: {pinned}"
        );
    }
}
