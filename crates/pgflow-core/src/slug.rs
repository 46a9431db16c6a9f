//! Slug rules, mirroring `pgflow.is_valid_slug` (the SQL function `pgflow.is_valid_slug`).

/// Longest slug `pgflow.is_valid_slug` accepts.
pub const MAX_SLUG_LEN: usize = 128;

/// Longest flow slug: the flow slug is also the pgmq queue name, and pgmq
/// refuses queue names longer than 47 characters.
pub const MAX_FLOW_SLUG_LEN: usize = 47;

/// The flow slug rule, stated once for every message that needs it.
pub const FLOW_SLUG_RULE: &str = "a flow slug is 1 to 47 letters, digits or underscores \
     (47 because it also names the flow's pgmq queue), starts with a letter or underscore, \
     and is not \"run\"";

/// The step slug rule.
pub const STEP_SLUG_RULE: &str = "a step slug is 1 to 128 letters, digits or underscores, \
     starts with a letter or underscore, and is not \"run\"";

/// True when `slug` is a valid step or flow slug: non-empty, at most
/// [`MAX_SLUG_LEN`] characters, `^[a-zA-Z_][a-zA-Z0-9_]*$`, and not `run`
/// (case-sensitive; `run` was once a reserved input key).
///
/// ```
/// assert!(pgflow_core::is_valid_slug("fetch_customer"));
/// assert!(!pgflow_core::is_valid_slug("9lives"));
/// assert!(!pgflow_core::is_valid_slug("run"));
/// ```
pub fn is_valid_slug(slug: &str) -> bool {
    let mut chars = slug.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    slug.len() <= MAX_SLUG_LEN
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && slug != "run"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_like_the_sql_function() {
        for ok in ["a", "_", "A_b9", "Run", &"x".repeat(128)] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in ["", "run", "1a", "a-b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }
}
