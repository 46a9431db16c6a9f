//! The PostgreSQL bin directory rule exists twice: in Rust (`find_bin_dir`)
//! and in `scripts/lib/pg-bin.sh`, which the scripts run before anything is
//! built. These tests hold the two to the same answers.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pgflow_pgtemp::find_bin_dir_with;

/// `pg_bin_dir` from the shell library, run with exactly these variables.
fn shell_bin_dir(pg_bin: Option<&Path>, path: &OsString) -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/pg-bin.sh");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#"source "$1" && pg_bin_dir"#)
        .arg("bash")
        .arg(&lib)
        .env_clear()
        .env("PATH", path);
    if let Some(dir) = pg_bin {
        cmd.env("PGFLOW_PG_BIN", dir);
    }
    let out = cmd.output().expect("run bash");
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn rust_bin_dir(pg_bin: Option<&Path>, path: &OsString) -> Option<PathBuf> {
    find_bin_dir_with(pg_bin.map(Into::into), Some(path.clone())).ok()
}

/// A directory with executable stand-ins for the server binaries.
fn fake_server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pg_ctl", "initdb", "postgres"] {
        let file = dir.path().join(name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Bash itself must stay findable, so every PATH keeps the system dirs last.
fn path_with(first: &[&Path]) -> OsString {
    let mut dirs: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
    dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn shell_and_rust_find_the_same_bin_dir() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let rust = rust_bin_dir(None, &path);
    assert_eq!(shell_bin_dir(None, &path), rust);
    assert!(rust.is_some(), "this machine has PostgreSQL installed");
}

#[test]
fn pgflow_pg_bin_wins_in_both_when_it_holds_the_server() {
    let fake = fake_server_dir();
    let path = path_with(&[]);
    assert_eq!(
        rust_bin_dir(Some(fake.path()), &path).as_deref(),
        Some(fake.path())
    );
    assert_eq!(
        shell_bin_dir(Some(fake.path()), &path).as_deref(),
        Some(fake.path())
    );
}

#[test]
fn pgflow_pg_bin_without_the_server_is_passed_over_in_both() {
    let empty = tempfile::tempdir().unwrap();
    let path = path_with(&[]);
    assert_eq!(
        shell_bin_dir(Some(empty.path()), &path),
        rust_bin_dir(Some(empty.path()), &path)
    );
    assert_ne!(
        rust_bin_dir(Some(empty.path()), &path).as_deref(),
        Some(empty.path())
    );
}

#[test]
fn a_pg_ctl_on_path_is_followed_to_its_real_directory_in_both() {
    let real = fake_server_dir();
    let linked = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(real.path().join("pg_ctl"), linked.path().join("pg_ctl")).unwrap();
    let path = path_with(&[linked.path()]);
    let expected = std::fs::canonicalize(real.path()).unwrap();
    assert_eq!(rust_bin_dir(None, &path), Some(expected.clone()));
    assert_eq!(shell_bin_dir(None, &path), Some(expected));
}
