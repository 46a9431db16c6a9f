//! docker/compose.yaml without Docker: there is no Docker engine in CI, so this
//! runs what the compose services run, in their `depends_on` order, with the
//! real `pgflow` binary against a fresh database: `install`, `flows` (twice, as
//! every `docker compose up` does), `worker`, then the `run start` command that
//! docker/README.md tells users to type, and checks the run's output.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use pgflow_tests::TestDb;
use serde_norway::Value as Yaml;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A service's `command`, as the image's `pgflow` entrypoint receives it.
fn command(compose: &Yaml, service: &str) -> Vec<String> {
    compose["services"][service]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("service {service} has no command list"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// The one service `service` waits for to complete successfully.
fn waits_for(compose: &Yaml, service: &str) -> String {
    let deps = compose["services"][service]["depends_on"]
        .as_mapping()
        .unwrap_or_else(|| panic!("service {service} depends on nothing"));
    assert_eq!(deps.len(), 1, "{service}: {deps:?}");
    let (name, how) = deps.iter().next().unwrap();
    assert_eq!(how["condition"], "service_completed_successfully");
    name.as_str().unwrap().to_string()
}

/// `pgflow` run the way the image runs it: from its working directory, which
/// holds `examples/flows` as the repository does.
fn in_image(args: &[String], url: &str) -> std::process::Command {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = cmd(&args, Some(url));
    cmd.current_dir(repo());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_services_commands_register_serve_and_complete_the_documented_run() {
    let compose: Yaml = serde_norway::from_str(
        &std::fs::read_to_string(repo().join("docker/compose.yaml")).unwrap(),
    )
    .unwrap();
    let dockerfile = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("WORKDIR /pgflow")
            && dockerfile.contains("COPY examples/flows ./examples/flows"),
        "the image no longer holds examples/flows in its working directory"
    );
    // The order compose starts them in.
    assert_eq!(waits_for(&compose, "worker"), "flows");
    assert_eq!(waits_for(&compose, "flows"), "install");

    let db = TestDb::empty().await;
    let url = db.url().to_string();

    ok(in_image(&command(&compose, "install"), &url)
        .output()
        .unwrap());
    for _ in 0..2 {
        ok(in_image(&command(&compose, "flows"), &url)
            .output()
            .unwrap());
    }
    let worker = in_image(&command(&compose, "worker"), &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // `docker compose ... run --rm cli <pgflow args>` from docker/README.md.
    let readme = std::fs::read_to_string(repo().join("docker/README.md")).unwrap();
    let joined = readme.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.contains("run --rm cli run start"))
        .expect("docker/README.md shows how to start a run");
    let words = shell_words(line);
    let args: Vec<String> = words
        .iter()
        .skip_while(|w| *w != "cli")
        .skip(1)
        .cloned()
        .chain(["--json".to_string()])
        .collect();
    let started = wait_with_limit(
        in_image(&args, &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(120),
    );

    // Stop the worker as `docker stop` does, whatever happened, then judge.
    let worker_out = terminate(worker);
    let text = ok(started);
    let snap: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        worker_out.status.success(),
        "worker: {}",
        stderr(&worker_out)
    );
    assert_eq!(snap["run"]["status"], "completed", "{snap}");
    assert_eq!(
        snap["run"]["output"],
        serde_json::json!({"report": "t: 5 words in 3 chunks, longest chunk 2 words"})
    );
}
