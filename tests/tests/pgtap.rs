//! pgTAP behaviour tests in `tests/pgtap/<function>/<behaviour>.test.sql`, in pgflow's own
//! style (one transaction per file, rolled back), run with psql against a fresh database.
//! They show that pgTAP suites written for upstream pgflow run against this schema.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgflow_tests::TestDb;

fn test_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            test_files(&path, out);
        } else if path.to_string_lossy().ends_with(".test.sql") {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn pgtap_files_pass() {
    let db = TestDb::new().await;
    sqlx::query("create extension if not exists pgtap")
        .execute(db.pool())
        .await
        .unwrap();
    let mut files = Vec::new();
    test_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pgtap"),
        &mut files,
    );
    files.sort();
    assert!(files.len() >= 3, "pgTAP files not found");
    for file in files {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db.url(),
                "-f",
            ])
            .arg(&file)
            .output()
            .expect("psql");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: psql failed\n{stdout}\n{stderr}",
            file.display()
        );
        let plan = stdout
            .lines()
            .find(|l| l.starts_with("1.."))
            .unwrap_or_else(|| panic!("{}: no plan\n{stdout}", file.display()));
        let planned: usize = plan[3..].trim().parse().unwrap();
        let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
        assert!(
            !stdout.lines().any(|l| l.starts_with("not ok")) && passed == planned,
            "{}: {passed} of {planned} passed\n{stdout}\n{stderr}",
            file.display()
        );
    }
}
