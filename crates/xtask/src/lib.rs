//! Repository chores behind `cargo xtask`.
//!
//! The SQL core is written as `sql/NNNN_<object>.sql`, one object per file.
//! Databases are upgraded by the append-only, embedded `migrations/V<n>__<name>.sql`.
//! [`gen_migrations`] derives the next migration from what changed in `sql/`
//! since the last one; `migrations/sql.lock` remembers the sha256 of every
//! `sql/` file as of the newest migration (and of every migration, so that a
//! hand edit of a released migration is caught). [`check_migrations`] fails
//! when `migrations/` is behind `sql/`.
//!
//! Only files whose header has the line `-- replaceable` (functions and views,
//! written with `CREATE OR REPLACE`) may change once migrated: the new migration
//! simply contains them again. Tables, types and indexes are never re-run;
//! change them with a new `sql/` file (e.g. an `ALTER TABLE`).

pub mod module_tree;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Name of the lock file inside `migrations/`.
pub const LOCK_FILE: &str = "sql.lock";

/// Header marker allowing a migrated `sql/` file to be edited.
pub const REPLACEABLE_MARKER: &str = "-- replaceable";

/// Migration name used for `V1` when none is given.
pub const DEFAULT_FIRST_NAME: &str = "pgflow_core";

/// Why generating or checking migrations failed.
#[derive(Debug, thiserror::Error)]
pub enum XtaskError {
    /// A filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A migrated, non-replaceable `sql/` file was edited.
    #[error(
        "sql/{file} changed since it went into a migration, but it is not replaceable \
         (tables, types and indexes are created once). Revert the edit and add a new sql/ \
         file instead (e.g. NNNN_alter_<table>.sql with an ALTER). Functions and views may \
         be edited if their header has the line `{REPLACEABLE_MARKER}` and they use \
         CREATE OR REPLACE."
    )]
    NotReplaceable {
        /// File name under `sql/`.
        file: String,
    },
    /// A migrated `sql/` file was deleted or renamed.
    #[error(
        "sql/{file} was migrated already and is gone from sql/; migrations are append-only, \
         so restore it and undo its objects with a new sql/ file (e.g. a DROP) instead"
    )]
    Removed {
        /// File name under `sql/`.
        file: String,
    },
    /// A generated migration no longer matches the lock.
    #[error(
        "migrations/{file} differs from what gen-migrations wrote (or was added by hand); \
         released migrations must never change; restore it with git"
    )]
    MigrationEdited {
        /// File name under `migrations/`.
        file: String,
    },
    /// A second or later migration needs a descriptive name.
    #[error(
        "V{version} needs a descriptive name: cargo xtask gen-migrations --name <what_changed>"
    )]
    NameRequired {
        /// The version being generated.
        version: u32,
    },
    /// The name does not fit refinery's `V<n>__<name>.sql` pattern.
    #[error("invalid migration name {0:?}: use lowercase letters, digits and underscores")]
    InvalidName(String),
    /// The lock file is malformed.
    #[error("migrations/{LOCK_FILE} line {line}: {reason}")]
    BadLock {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `migrations/` is behind `sql/`.
    #[error("migrations/ is out of date with sql/ ({0}); run `cargo xtask gen-migrations`")]
    OutOfDate(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> XtaskError + '_ {
    move |source| XtaskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a run of [`gen_migrations`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenOutcome {
    /// `migrations/` already covers `sql/`; nothing was written.
    UpToDate,
    /// A new migration was written.
    Written {
        /// File name, e.g. `V2__add_cancel_run.sql`.
        file: String,
        /// The `sql/` files it contains, in order.
        sources: Vec<String>,
    },
}

impl fmt::Display for GenOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenOutcome::UpToDate => write!(f, "migrations/ is up to date with sql/; nothing to do"),
            GenOutcome::Written { file, sources } => {
                write!(
                    f,
                    "wrote migrations/{file} from {} sql/ file(s):",
                    sources.len()
                )?;
                for source in sources {
                    write!(f, "\n  sql/{source}")?;
                }
                Ok(())
            }
        }
    }
}

/// Contents of `migrations/sql.lock`: file name → sha256 (hex).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Lock {
    sql: BTreeMap<String, String>,
    migrations: BTreeMap<String, String>,
}

impl Lock {
    fn parse(text: &str) -> Result<Self, XtaskError> {
        let mut lock = Lock::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| XtaskError::BadLock {
                line: i + 1,
                reason: reason.to_string(),
            };
            let (hash, path) = line
                .split_once("  ")
                .ok_or_else(|| bad("expected `<sha256>  <path>`"))?;
            let entry = (path.to_string(), hash.to_string());
            if let Some(name) = path.strip_prefix("sql/") {
                lock.sql.insert(name.to_string(), entry.1);
            } else if let Some(name) = path.strip_prefix("migrations/") {
                lock.migrations.insert(name.to_string(), entry.1);
            } else {
                return Err(bad("path must start with sql/ or migrations/"));
            }
        }
        Ok(lock)
    }

    /// `sha256sum`-compatible lines, so `sha256sum -c` can verify the
    /// migrations from the repository root.
    fn render(&self) -> String {
        let mut out = String::from(
            "# Generated by `cargo xtask gen-migrations`; do not edit.\n\
             # sha256 of every sql/ file as of the newest migration, and of every migration.\n",
        );
        for (name, hash) in &self.sql {
            out.push_str(&format!("{hash}  sql/{name}\n"));
        }
        for (name, hash) in &self.migrations {
            out.push_str(&format!("{hash}  migrations/{name}\n"));
        }
        out
    }
}

/// The next migration, as computed from the tree without writing anything.
#[derive(Debug)]
struct Plan {
    version: u32,
    /// `sql/` files that are new or changed, in name order, with contents.
    sources: Vec<(String, String)>,
    /// The lock as it will be after writing the migration (minus its own entry).
    lock: Lock,
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Whether the leading comment block of a `sql/` file has the marker line.
fn is_replaceable(sql: &str) -> bool {
    sql.lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with("--"))
        .any(|l| l.trim() == REPLACEABLE_MARKER)
}

/// `(version, file name)` of every `V<n>__*.sql` in `migrations/`.
fn list_migrations(dir: &Path) -> Result<Vec<(u32, String)>, XtaskError> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = entry
            .map_err(io_err(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let version = name
            .strip_prefix('V')
            .and_then(|rest| rest.split_once("__"))
            .filter(|_| name.ends_with(".sql"))
            .and_then(|(v, _)| v.parse::<u32>().ok());
        if let Some(version) = version {
            found.push((version, name));
        }
    }
    found.sort();
    Ok(found)
}

/// `(file name, content)` of every `sql/*.sql`, in name order.
fn read_sql_dir(dir: &Path) -> Result<Vec<(String, String)>, XtaskError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            let name = path
                .file_name()
                .expect("a file has a name")
                .to_string_lossy()
                .into_owned();
            let content = fs::read_to_string(&path).map_err(io_err(&path))?;
            files.push((name, content));
        }
    }
    files.sort();
    Ok(files)
}

fn plan(root: &Path) -> Result<Option<Plan>, XtaskError> {
    let sql_dir = root.join("sql");
    let mig_dir = root.join("migrations");
    let lock_path = mig_dir.join(LOCK_FILE);
    let lock = if lock_path.exists() {
        Lock::parse(&fs::read_to_string(&lock_path).map_err(io_err(&lock_path))?)?
    } else {
        Lock::default()
    };

    let migrations = list_migrations(&mig_dir)?;
    for (_, name) in &migrations {
        let path = mig_dir.join(name);
        let hash = sha256_hex(&fs::read(&path).map_err(io_err(&path))?);
        if lock.migrations.get(name) != Some(&hash) {
            return Err(XtaskError::MigrationEdited { file: name.clone() });
        }
    }
    if let Some(missing) = lock
        .migrations
        .keys()
        .find(|name| !migrations.iter().any(|(_, m)| m == *name))
    {
        return Err(XtaskError::MigrationEdited {
            file: missing.clone(),
        });
    }

    let files = read_sql_dir(&sql_dir)?;
    if let Some(gone) = lock
        .sql
        .keys()
        .find(|name| !files.iter().any(|(f, _)| f == *name))
    {
        return Err(XtaskError::Removed { file: gone.clone() });
    }

    let mut sources = Vec::new();
    let mut next_lock = Lock {
        sql: BTreeMap::new(),
        migrations: lock.migrations.clone(),
    };
    for (name, content) in files {
        let hash = sha256_hex(content.as_bytes());
        match lock.sql.get(&name) {
            Some(old) if *old == hash => {}
            Some(_) if !is_replaceable(&content) => {
                return Err(XtaskError::NotReplaceable { file: name });
            }
            _ => sources.push((name.clone(), content)),
        }
        next_lock.sql.insert(name, hash);
    }
    if sources.is_empty() {
        return Ok(None);
    }
    let version = migrations.last().map_or(1, |(v, _)| v + 1);
    Ok(Some(Plan {
        version,
        sources,
        lock: next_lock,
    }))
}

/// Writes the next migration for whatever changed in `<root>/sql` since the
/// last one, and updates the lock. `name` is the descriptive part of
/// `V<n>__<name>.sql`; it defaults to [`DEFAULT_FIRST_NAME`] for `V1` and is
/// required afterwards. Writes nothing when `migrations/` is up to date.
pub fn gen_migrations(root: &Path, name: Option<&str>) -> Result<GenOutcome, XtaskError> {
    let Some(plan) = plan(root)? else {
        return Ok(GenOutcome::UpToDate);
    };
    let name = match (name, plan.version) {
        (Some(name), _) => name,
        (None, 1) => DEFAULT_FIRST_NAME,
        (None, version) => return Err(XtaskError::NameRequired { version }),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(XtaskError::InvalidName(name.to_string()));
    }

    let file = format!("V{}__{name}.sql", plan.version);
    let mut sql = format!(
        "-- {file}: generated by `cargo xtask gen-migrations` from sql/; do not edit.\n\
         -- Change sql/ and generate a new migration instead.\n"
    );
    for (source, content) in &plan.sources {
        sql.push_str(&format!("\n-- source: sql/{source}\n{content}"));
        if !content.ends_with('\n') {
            sql.push('\n');
        }
    }

    let mig_dir = root.join("migrations");
    fs::create_dir_all(&mig_dir).map_err(io_err(&mig_dir))?;
    let path = mig_dir.join(&file);
    fs::write(&path, &sql).map_err(io_err(&path))?;
    let mut lock = plan.lock;
    lock.migrations
        .insert(file.clone(), sha256_hex(sql.as_bytes()));
    let lock_path = mig_dir.join(LOCK_FILE);
    fs::write(&lock_path, lock.render()).map_err(io_err(&lock_path))?;

    Ok(GenOutcome::Written {
        file,
        sources: plan.sources.into_iter().map(|(n, _)| n).collect(),
    })
}

/// Fails with [`XtaskError::OutOfDate`] when `<root>/migrations` does not cover
/// every change in `<root>/sql`, and with the other errors when
/// [`gen_migrations`] would refuse. Writes nothing.
pub fn check_migrations(root: &Path) -> Result<(), XtaskError> {
    match plan(root)? {
        None => Ok(()),
        Some(plan) => {
            const SHOWN: usize = 5;
            let mut files: Vec<String> = plan
                .sources
                .iter()
                .take(SHOWN)
                .map(|(n, _)| format!("sql/{n}"))
                .collect();
            if plan.sources.len() > SHOWN {
                files.push(format!("and {} more", plan.sources.len() - SHOWN));
            }
            Err(XtaskError::OutOfDate(format!(
                "new or changed: {}",
                files.join(", ")
            )))
        }
    }
}

/// The workspace root, two levels above this crate.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask sits two levels below the workspace root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("sql")).unwrap();
            Tree(dir)
        }
        fn root(&self) -> &Path {
            self.0.path()
        }
        fn write_sql(&self, name: &str, content: &str) {
            fs::write(self.root().join("sql").join(name), content).unwrap();
        }
        fn migration(&self, name: &str) -> String {
            fs::read_to_string(self.root().join("migrations").join(name)).unwrap()
        }
        fn migration_names(&self) -> Vec<String> {
            list_migrations(&self.root().join("migrations"))
                .unwrap()
                .into_iter()
                .map(|(_, n)| n)
                .collect()
        }
    }

    const TABLE: &str = "-- Table t.\ncreate table t (x int);\n";
    const FUNC: &str = "-- replaceable\n-- Function f.\ncreate or replace function f() returns int language sql as 'select 1';\n";

    #[test]
    fn first_run_writes_v1_with_every_file_in_order() {
        let tree = Tree::new();
        tree.write_sql("0020_f.sql", FUNC);
        tree.write_sql("0010_t.sql", TABLE);
        let outcome = gen_migrations(tree.root(), None).unwrap();
        assert_eq!(
            outcome,
            GenOutcome::Written {
                file: "V1__pgflow_core.sql".into(),
                sources: vec!["0010_t.sql".into(), "0020_f.sql".into()],
            }
        );
        let v1 = tree.migration("V1__pgflow_core.sql");
        let t = v1.find("-- source: sql/0010_t.sql\n").unwrap();
        let f = v1.find("-- source: sql/0020_f.sql\n").unwrap();
        assert!(t < f);
        assert!(v1.contains(TABLE) && v1.contains(FUNC));
        check_migrations(tree.root()).unwrap();
    }

    #[test]
    fn unchanged_tree_writes_nothing() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        gen_migrations(tree.root(), None).unwrap();
        let lock_before = fs::read(tree.root().join("migrations").join(LOCK_FILE)).unwrap();
        assert_eq!(
            gen_migrations(tree.root(), None).unwrap(),
            GenOutcome::UpToDate
        );
        let lock_after = fs::read(tree.root().join("migrations").join(LOCK_FILE)).unwrap();
        assert_eq!(lock_before, lock_after);
        assert_eq!(tree.migration_names(), vec!["V1__pgflow_core.sql"]);
    }

    #[test]
    fn new_and_replaceable_files_go_into_the_next_migration_only() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        tree.write_sql("0020_f.sql", FUNC);
        gen_migrations(tree.root(), None).unwrap();
        let v1 = tree.migration("V1__pgflow_core.sql");

        tree.write_sql("0020_f.sql", &FUNC.replace("select 1", "select 2"));
        tree.write_sql("0030_t_alter.sql", "alter table t add y int;\n");
        assert!(matches!(
            check_migrations(tree.root()),
            Err(XtaskError::OutOfDate(_))
        ));
        assert!(matches!(
            gen_migrations(tree.root(), None),
            Err(XtaskError::NameRequired { version: 2 })
        ));
        gen_migrations(tree.root(), Some("f_returns_two")).unwrap();

        let v2 = tree.migration("V2__f_returns_two.sql");
        assert!(!v2.contains("sql/0010_t.sql"));
        assert!(v2.contains("-- source: sql/0020_f.sql\n") && v2.contains("select 2"));
        assert!(v2.contains("-- source: sql/0030_t_alter.sql\n"));
        assert_eq!(tree.migration("V1__pgflow_core.sql"), v1);
        check_migrations(tree.root()).unwrap();
    }

    #[test]
    fn editing_a_migrated_table_is_refused() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        gen_migrations(tree.root(), None).unwrap();
        tree.write_sql("0010_t.sql", &TABLE.replace("x int", "x bigint"));
        let err = gen_migrations(tree.root(), Some("widen")).unwrap_err();
        assert!(matches!(err, XtaskError::NotReplaceable { .. }));
        assert!(err.to_string().contains("add a new sql/"), "{err}");
        assert!(check_migrations(tree.root()).is_err());
        assert_eq!(tree.migration_names(), vec!["V1__pgflow_core.sql"]);
    }

    #[test]
    fn hand_edited_migration_is_detected() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        gen_migrations(tree.root(), None).unwrap();
        let path = tree.root().join("migrations").join("V1__pgflow_core.sql");
        fs::write(&path, "-- oops\n").unwrap();
        assert!(matches!(
            check_migrations(tree.root()),
            Err(XtaskError::MigrationEdited { .. })
        ));
    }

    #[test]
    fn removed_sql_file_is_refused() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        gen_migrations(tree.root(), None).unwrap();
        fs::remove_file(tree.root().join("sql").join("0010_t.sql")).unwrap();
        assert!(matches!(
            gen_migrations(tree.root(), Some("x")),
            Err(XtaskError::Removed { .. })
        ));
    }

    #[test]
    fn bad_names_are_refused() {
        let tree = Tree::new();
        tree.write_sql("0010_t.sql", TABLE);
        assert!(matches!(
            gen_migrations(tree.root(), Some("Has Space")),
            Err(XtaskError::InvalidName(_))
        ));
    }

    #[test]
    fn marker_counts_only_in_the_header() {
        assert!(is_replaceable(FUNC));
        assert!(is_replaceable("-- f\n-- replaceable\nselect 1;\n"));
        assert!(!is_replaceable("-- f\nselect 1;\n-- replaceable\n"));
        assert!(!is_replaceable(TABLE));
    }
}
