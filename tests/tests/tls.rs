//! TLS in database URLs, against a throwaway cluster that only accepts TLS
//! (`hostssl` in pg_hba.conf) with a certificate generated for the test.

use std::process::Command;
use std::time::Duration;

use pgflow::{Client, CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
use pgflow_db::error::tls_hint;
use pgflow_pgtemp::{TempCluster, TempClusterOptions};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use tempfile::TempDir;

/// A CA, a server certificate it signed for `localhost` and 127.0.0.1, and
/// an unrelated CA.
struct Certs {
    dir: TempDir,
}

impl Certs {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for (name, cn) in [("ca", "pgflow test CA"), ("wrong", "some other CA")] {
            let (key, crt, subj) = (
                format!("{name}.key"),
                format!("{name}.crt"),
                format!("/CN={cn}"),
            );
            let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subj];
            args.extend(ec);
            args.extend([
                "-keyout",
                &key,
                "-out",
                &crt,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&args);
        }
        let mut args = vec!["req", "-nodes", "-subj", "/CN=localhost"];
        args.extend(ec);
        args.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&args);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }
}

/// A cluster with `ssl = on` that refuses unencrypted TCP connections.
fn tls_only_cluster(certs: &Certs) -> TempCluster {
    TempCluster::start_with(TempClusterOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), "'server.crt'".into()),
            ("ssl_key_file".into(), "'server.key'".into()),
        ],
        data_files: vec![
            ("server.crt".into(), certs.read("server.crt")),
            ("server.key".into(), certs.read("server.key")),
        ],
        hba: Some(
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n"
                .into(),
        ),
        ..Default::default()
    })
    .expect("TLS cluster starts")
}

/// `postgres://postgres@<host>:<port>/postgres?<query>`.
fn url(cluster: &TempCluster, host: &str, query: &str) -> String {
    format!(
        "postgres://postgres@{host}:{}/postgres?{query}",
        cluster.port()
    )
}

fn add_one_flow() -> WorkerFlow {
    WorkerFlow::builder("add_one")
        .step(StepDef::single("add"), |n: i64, _ctx| async move {
            Ok::<_, std::convert::Infallible>(n + 1)
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_worker_and_client_connect_with_tls() {
    let certs = Certs::generate();
    let cluster = tls_only_cluster(&certs);
    let ca = certs.path("ca.crt");

    // require: encrypted, no verification.
    let report = pgflow_db::install::install(&url(&cluster, "127.0.0.1", "sslmode=require"))
        .await
        .expect("install with sslmode=require");
    assert!(report.changed(), "{report}");

    // verify-full with the right CA, by the name in the certificate.
    let full = url(
        &cluster,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let again = pgflow_db::install::install(&full)
        .await
        .expect("install with sslmode=verify-full");
    assert!(!again.changed(), "{again}");
    // verify-ca does not check the name.
    pgflow_db::install::install(&url(
        &cluster,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await
    .expect("install with sslmode=verify-ca");

    // A worker and a client over verify-full run a flow to completion; the
    // client's and the worker's listeners reuse the same TLS options.
    let worker_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&full)
        .await
        .expect("sqlx connects with verify-full");
    let ssl_in_use: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&worker_pool)
            .await
            .unwrap();
    assert!(ssl_in_use);
    let worker = Worker::new(
        worker_pool,
        WorkerConfig {
            compile_mode: CompileMode::Development,
            ..Default::default()
        },
    )
    .flow(add_one_flow())
    .start()
    .await
    .expect("worker starts over TLS");
    let client = Client::new(
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&full)
            .await
            .unwrap(),
    );
    let run = client.start_flow("add_one", &41).await.unwrap();
    let out: Value = tokio::time::timeout(Duration::from_secs(60), run.wait())
        .await
        .expect("run finished in time")
        .unwrap();
    assert_eq!(out, json!({"add": 42}));
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_misconfigurations_are_clear_errors() {
    let certs = Certs::generate();
    let cluster = tls_only_cluster(&certs);

    // The wrong CA: both drivers refuse, with a hint naming sslrootcert.
    let wrong = url(
        &cluster,
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            certs.path("wrong.crt")
        ),
    );
    let err = pgflow_db::install::install(&wrong)
        .await
        .expect_err("installer refuses a certificate from another CA")
        .to_string();
    assert!(
        err.contains("hint: the server's certificate is not signed by a CA in sslrootcert"),
        "{err}"
    );
    let err = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&wrong)
        .await
        .expect_err("sqlx refuses a certificate from another CA")
        .to_string();
    assert!(
        tls_hint(&err).is_some_and(|h| h.contains("sslrootcert")),
        "{err}"
    );

    // Plain connections are refused, and the error says to turn TLS on.
    let plain = url(&cluster, "127.0.0.1", "sslmode=disable");
    let err = pgflow_db::install::install(&plain)
        .await
        .expect_err("server refuses plain connections")
        .to_string();
    assert!(err.contains("hint: the server only accepts TLS"), "{err}");
    let err = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&plain)
        .await
        .expect_err("server refuses plain sqlx connections")
        .to_string();
    assert!(
        tls_hint(&err).is_some_and(|h| h.contains("sslmode=require")),
        "{err}"
    );

    // An unknown sslmode is rejected before connecting.
    let err = pgflow_db::install::install(&url(&cluster, "127.0.0.1", "sslmode=verify"))
        .await
        .expect_err("unknown sslmode")
        .to_string();
    assert!(err.contains("unsupported sslmode `verify`"), "{err}");
    // A missing CA file is named.
    let err = pgflow_db::install::install(&url(
        &cluster,
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
    ))
    .await
    .expect_err("missing sslrootcert")
    .to_string();
    assert!(err.contains("sslrootcert /nonexistent/ca.crt"), "{err}");
}
