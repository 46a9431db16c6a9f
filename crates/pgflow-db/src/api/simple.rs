//! The pooler path of the `call!` macro (api/mod.rs): one query file sent with the
//! simple query protocol, its `$n` placeholders replaced by quoted literals.
//!
//! Why: behind PgBouncer in transaction mode every `Sync` may hand the client
//! another server connection. sqlx's extended protocol (named statements by
//! default, and even unnamed ones with `persistent(false)`) sends Parse and
//! Describe, waits for `ReadyForQuery`, then sends Bind and Execute: the two
//! halves can land on different servers, so a named statement is missing (or
//! exists twice) and an unnamed one may be another client's. A simple query is
//! one message answered within one `Sync`, which every pooler handles.
//!
//! Values are rendered as escaped string literals (`E'..'`, backslashes and
//! quotes doubled) with an explicit cast to the type sqlx would have bound, so
//! the server resolves the same function overloads as with parameters.

use serde::Serialize;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{FromRow, PgExecutor, Row};
use uuid::Uuid;

/// A value rendered as a SQL literal for a simple query.
pub trait Literal {
    /// Appends the literal (with its cast) to `sql`.
    fn write_literal(&self, sql: &mut String);
}

/// Appends `E'<text>'::<ty>`.
fn quoted(sql: &mut String, text: &str, ty: &str) {
    sql.push_str("E'");
    for c in text.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push_str("'::");
    sql.push_str(ty);
}

impl<T: Literal + ?Sized> Literal for &T {
    fn write_literal(&self, sql: &mut String) {
        (**self).write_literal(sql)
    }
}

impl<T: Literal> Literal for Option<T> {
    fn write_literal(&self, sql: &mut String) {
        match self {
            Some(v) => v.write_literal(sql),
            // A bare NULL: the function's parameter type decides (sqlx binds
            // NULL with T's type; no overloads here differ by a NULL argument).
            None => sql.push_str("NULL"),
        }
    }
}

impl Literal for str {
    fn write_literal(&self, sql: &mut String) {
        quoted(sql, self, "text")
    }
}

impl Literal for String {
    fn write_literal(&self, sql: &mut String) {
        quoted(sql, self, "text")
    }
}

impl Literal for Uuid {
    fn write_literal(&self, sql: &mut String) {
        quoted(sql, &self.to_string(), "uuid")
    }
}

impl Literal for bool {
    fn write_literal(&self, sql: &mut String) {
        sql.push_str(if *self { "true" } else { "false" })
    }
}

macro_rules! integer_literal {
    ($($t:ty => $pg:literal),*) => {$(
        impl Literal for $t {
            fn write_literal(&self, sql: &mut String) {
                sql.push_str(&format!("({self})::{}", $pg))
            }
        }
    )*};
}
integer_literal!(i16 => "int2", i32 => "int4", i64 => "int8");

impl Literal for f64 {
    fn write_literal(&self, sql: &mut String) {
        // Through text so NaN and infinities round-trip.
        quoted(sql, &self.to_string(), "float8")
    }
}

impl Literal for serde_json::Value {
    fn write_literal(&self, sql: &mut String) {
        quoted(sql, &self.to_string(), "jsonb")
    }
}

impl<T: Serialize> Literal for sqlx::types::Json<T> {
    fn write_literal(&self, sql: &mut String) {
        // Serializing a value that sqlx could bind cannot fail short of a
        // broken Serialize impl; null is what sqlx would send then too.
        let text = serde_json::to_string(&self.0).unwrap_or_else(|_| "null".into());
        quoted(sql, &text, "jsonb")
    }
}

/// `ARRAY[..]::<ty>[]` for the array parameters the queries take.
fn array<T: Literal>(sql: &mut String, items: &[T], ty: &str) {
    sql.push_str("ARRAY[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        item.write_literal(sql);
    }
    sql.push_str("]::");
    sql.push_str(ty);
    sql.push_str("[]");
}

macro_rules! array_literal {
    ($($t:ty => $pg:literal),*) => {$(
        impl Literal for [$t] {
            fn write_literal(&self, sql: &mut String) { array(sql, self, $pg) }
        }
        impl Literal for Vec<$t> {
            fn write_literal(&self, sql: &mut String) { array(sql, self, $pg) }
        }
    )*};
}
array_literal!(i32 => "int4", i64 => "int8", String => "text", Uuid => "uuid");

/// `sql` with the placeholders `$1`..`$n` replaced by `args`. Comments are
/// dropped (a literal holding a newline must never land in a `--` comment)
/// and quoted strings and identifiers are copied untouched; dollar quoting
/// and `E'..'` strings do not occur in the query files (checked by a test).
pub fn render(sql: &str, args: &[&dyn Literal]) -> String {
    let mut out = String::with_capacity(sql.len() + 64 * args.len());
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &sql[i..];
        if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            // Block comments nest in PostgreSQL.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += rest[j..].chars().next().map_or(1, char::len_utf8);
                }
            }
            out.push(' ');
            i += j;
        } else if let Some(q @ ('\'' | '"')) = rest.chars().next() {
            // A doubled quote inside is two adjacent quoted runs: same result.
            let len = rest[1..].find(q).map_or(rest.len(), |e| e + 2);
            out.push_str(&rest[..len]);
            i += len;
        } else if let Some(after) = rest.strip_prefix('$') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            match after[..digits].parse::<usize>() {
                Ok(n) if (1..=args.len()).contains(&n) => {
                    // Parenthesized: a cast binds tighter than any operator.
                    out.push('(');
                    args[n - 1].write_literal(&mut out);
                    out.push(')');
                }
                _ => out.push_str(&rest[..=digits]),
            }
            i += 1 + digits;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `query_as` equivalents.
pub mod rows {
    use super::*;

    /// The first row as `T`; `RowNotFound` when there is none.
    pub async fn fetch_one<'e, T>(ex: impl PgExecutor<'e>, sql: &str) -> sqlx::Result<T>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        T::from_row(&ex.fetch_one(sqlx::raw_sql(sql)).await?)
    }

    /// The first row as `T`, if any.
    pub async fn fetch_optional<'e, T>(
        ex: impl PgExecutor<'e>,
        sql: &str,
    ) -> sqlx::Result<Option<T>>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        ex.fetch_optional(sqlx::raw_sql(sql))
            .await?
            .map(|r| T::from_row(&r))
            .transpose()
    }

    /// Every row as `T`.
    pub async fn fetch_all<'e, T>(ex: impl PgExecutor<'e>, sql: &str) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        ex.fetch_all(sqlx::raw_sql(sql))
            .await?
            .iter()
            .map(T::from_row)
            .collect()
    }
}

/// `query_scalar` equivalents: the first column.
pub mod scalar {
    use super::*;
    use sqlx::{Decode, Postgres, Type};

    /// The first column of the first row; `RowNotFound` when there is none.
    pub async fn fetch_one<'e, T>(ex: impl PgExecutor<'e>, sql: &str) -> sqlx::Result<T>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        ex.fetch_one(sqlx::raw_sql(sql)).await?.try_get(0)
    }

    /// The first column of the first row, if any.
    pub async fn fetch_optional<'e, T>(
        ex: impl PgExecutor<'e>,
        sql: &str,
    ) -> sqlx::Result<Option<T>>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        ex.fetch_optional(sqlx::raw_sql(sql))
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }

    /// The first column of every row.
    pub async fn fetch_all<'e, T>(ex: impl PgExecutor<'e>, sql: &str) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        ex.fetch_all(sqlx::raw_sql(sql))
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
    }
}

/// `query` equivalents.
pub mod query {
    use super::*;

    /// Runs the statement.
    pub async fn execute<'e>(ex: impl PgExecutor<'e>, sql: &str) -> sqlx::Result<PgQueryResult> {
        ex.execute(sqlx::raw_sql(sql)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_become_escaped_casted_literals() {
        let id = Uuid::nil();
        let input = json!({"q": "it's a \\ test"});
        let none: Option<&str> = None;
        let sql = render(
            "select f(a => $1, b => $2, c => $3, d => $10, e => $4, f => $5)",
            &[&"o'k", &input, &id, &none, &vec![1_i64, 2]],
        );
        assert_eq!(
            sql,
            "select f(a => (E'o''k'::text), b => (E'{\"q\":\"it''s a \\\\\\\\ test\"}'::jsonb), \
             c => (E'00000000-0000-0000-0000-000000000000'::uuid), d => $10, e => (NULL), \
             f => (ARRAY[(1)::int8,(2)::int8]::int8[]))"
        );
    }

    #[test]
    fn comments_strings_and_identifiers_are_not_rewritten() {
        let sql = render(
            "-- the flow's $1\nselect '$1', \"$1\", $1 /* $1 /* nested */ 'x */ + 1",
            &[&"line\n-- break"],
        );
        assert_eq!(
            sql,
            "\nselect '$1', \"$1\", (E'line\n-- break'::text)   + 1"
        );
    }

    #[test]
    fn query_files_use_dollar_only_for_placeholders() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let sql = std::fs::read_to_string(&path).unwrap();
            // Comments may say anything; the code must not dollar-quote or
            // use E'' strings, which render() does not lex.
            let code: String = sql
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in code.match_indices('$') {
                assert!(
                    code[i + 1..].starts_with(|c: char| c.is_ascii_digit()),
                    "{}: a `$` that is not a placeholder",
                    path.display()
                );
            }
            let b = code.as_bytes();
            for (i, _) in code.match_indices('\'') {
                let escape_string = i >= 1
                    && b[i - 1].eq_ignore_ascii_case(&b'e')
                    && (i == 1 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                assert!(!escape_string, "{}: an E'' string", path.display());
            }
        }
    }
}
