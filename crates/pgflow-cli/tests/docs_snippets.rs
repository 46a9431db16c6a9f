//! Every snippet a user may paste from README.md and docs/ works: each
//! ```` ```sql ```` block runs (in order, in one fresh database, with
//! `<run_id>` replaced by the newest run's id), each flow file (```` ```toml ````
//! or ```` ```json ```` with `slug` and `steps`) registers with `pgflow flow
//! add`, and each `pgflow ...` command line in a ```` ```sh ```` block parses.
//! A block that is an excerpt, not meant to be run, is fenced as another
//! language (e.g. ```` ```plpgsql ````).

use crate::common;

use std::path::Path;

use clap::Parser as _;
use common::*;
use pgflow_tests::TestDb;

/// `(file, language, text)` of every fenced block in README.md and docs/*.md.
pub(crate) fn blocks() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(lang) = line.strip_prefix("```") else {
                continue;
            };
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            found.push((
                file.file_name().unwrap().to_string_lossy().into_owned(),
                lang.trim().to_string(),
                body.join("\n") + "\n",
            ));
        }
    }
    found
}

/// The roles that `create role NAME` in blocks of `lang` create.
pub(crate) fn roles_created_in(lang: &str) -> Vec<String> {
    blocks()
        .iter()
        .filter(|(_, l, _)| l == lang)
        .flat_map(|(_, _, text)| {
            text.split("create role ")
                .skip(1)
                .map(|rest| rest.split_whitespace().next().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Drops `roles` if they exist (they belong to the cluster, not a test's database).
pub(crate) async fn drop_roles(pool: &sqlx::PgPool, roles: &[String]) {
    if !roles.is_empty() {
        let sql = format!("drop role if exists {}", roles.join(", "));
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
}

#[tokio::test]
async fn every_sql_snippet_runs() {
    let db = TestDb::new().await;
    // Roles belong to the cluster, not the test's database: drop the login
    // roles the snippets create, before (a previous run's) and after.
    let roles = roles_created_in("sql");
    drop_roles(db.pool(), &roles).await;
    let mut ran = 0;
    for (file, lang, text) in blocks() {
        if lang != "sql" {
            continue;
        }
        let run_id: Option<uuid::Uuid> =
            sqlx::query_scalar("select run_id from pgflow.runs order by started_at desc limit 1")
                .fetch_optional(db.pool())
                .await
                .unwrap();
        let sql = text.replace("<run_id>", &run_id.unwrap_or_default().to_string());
        if let Err(e) = sqlx::raw_sql(&sql).execute(db.pool()).await {
            panic!("a SQL snippet in {file} fails: {e}\n{text}");
        }
        ran += 1;
    }
    assert!(ran >= 2, "the README's SQL snippets were not found");
    drop_roles(db.pool(), &roles).await;
    // The snippets leave no worker that looks crashed.
    let stale: i64 =
        sqlx::query_scalar("select count(*) from pgflow.workers where stopped_at is null")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        stale, 0,
        "a snippet leaves a worker row that will show as stale"
    );
}

#[tokio::test]
async fn every_flow_file_snippet_registers() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut added = 0;
    for (i, (file, lang, text)) in blocks().into_iter().enumerate() {
        let is_flow =
            (lang == "toml" || lang == "json") && text.contains("slug") && text.contains("steps");
        if !is_flow {
            continue;
        }
        // Each snippet is its own flow: give it a fresh slug.
        let value = pgflow_cli::flowfile::parse(&text, &lang).unwrap();
        let mut value = value;
        value["slug"] = serde_json::json!(format!("snippet_{i}"));
        let path = write(dir.path(), &format!("snippet_{i}.json"), &value.to_string());
        let out = pgflow(&["flow", "add", path.to_str().unwrap()], Some(db.url()));
        assert!(
            out.status.success(),
            "a flow file snippet in {file} does not register:\n{text}\n{}",
            stderr(&out)
        );
        added += 1;
    }
    assert!(added >= 2, "the flow file snippets were not found");
}

#[test]
fn every_pgflow_command_line_in_the_docs_parses() {
    let mut checked = 0;
    for (file, lang, text) in blocks() {
        if lang != "sh" {
            continue;
        }
        // `<run_id>` stands for a run id, as in the SQL snippets.
        let text = text
            .replace("\\\n", " ")
            .replace("<run_id>", &uuid::Uuid::nil().to_string());
        for line in text.lines() {
            let words = shell_words(line);
            // Leading VAR=value assignments, then the command.
            let words: Vec<String> = words
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            // Synopses with [optional] parts are not command lines.
            if words.first().map(String::as_str) != Some("pgflow")
                || words.iter().any(|w| w.starts_with('['))
            {
                continue;
            }
            if let Err(e) = pgflow_cli::Cli::try_parse_from(&words) {
                panic!("{file}: `{line}` does not parse:\n{e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "no pgflow command lines found");
}
