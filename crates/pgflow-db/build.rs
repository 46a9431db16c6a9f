//! Rebuild when a migration is added: refinery's `embed_migrations!` only
//! tracks the files that existed at the last build.

fn main() {
    // In the repository `migrations` is a symlink to the top-level
    // `migrations/` (in a packaged crate it is a plain directory): name the
    // directory it resolves to, so that cargo watches the files themselves.
    let dir = std::fs::canonicalize("migrations").expect("crates/pgflow-db/migrations exists");
    println!("cargo:rerun-if-changed={}", dir.display());
}
