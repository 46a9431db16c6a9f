//! Strict keys for flow files: every object a file holds must use only the
//! keys its place allows, so a typo such as `dependOn` is an error naming the
//! key, where it is, and the closest valid key, instead of being ignored.
//!
//! serde's `deny_unknown_fields` cannot do this here: it does not combine
//! with the `#[serde(flatten)]` options of the definition types, and its
//! message has no "did you mean". The check runs on the parsed JSON value
//! (TOML and YAML are converted first), before deserializing.

use serde_json::{Map, Value};

use crate::error::FlowError;

/// Keys of a definition-layout flow object.
pub const DEF_FLOW_KEYS: &[&str] = &["slug", "maxAttempts", "baseDelay", "timeout", "steps"];
/// Keys of a definition-layout step.
pub const DEF_STEP_KEYS: &[&str] = &[
    "slug",
    "type",
    "dependsOn",
    "maxAttempts",
    "baseDelay",
    "timeout",
    "startDelay",
    "if",
    "ifNot",
    "whenUnmet",
    "whenExhausted",
];
/// Keys of a shape-layout flow object (the shape plus its `slug`).
pub const SHAPE_FLOW_KEYS: &[&str] = &["slug", "options", "steps"];
/// Keys of a shape-layout flow's `options`.
pub const SHAPE_FLOW_OPTION_KEYS: &[&str] = &["maxAttempts", "baseDelay", "timeout"];
/// Keys of a shape-layout step.
pub const SHAPE_STEP_KEYS: &[&str] = &[
    "slug",
    "stepType",
    "dependencies",
    "whenUnmet",
    "whenExhausted",
    "requiredInputPattern",
    "forbiddenInputPattern",
    "options",
];
/// Keys of a shape-layout step's `options`.
pub const SHAPE_STEP_OPTION_KEYS: &[&str] = &["maxAttempts", "baseDelay", "timeout", "startDelay"];
/// Keys of a shape-layout condition pattern.
pub const SHAPE_PATTERN_KEYS: &[&str] = &["defined", "value"];

/// Refuses the first key of `object` that `allowed` does not list; the
/// error names the key, `location` (e.g. `step "load"`) and the closest
/// allowed key when one is near enough to be a typo.
pub fn check(
    object: &Map<String, Value>,
    allowed: &[&'static str],
    location: &str,
) -> Result<(), FlowError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(FlowError::UnknownKey {
            key: key.clone(),
            location: location.to_string(),
            suggestion: closest(key, allowed.iter().copied()),
            valid: allowed.join(", "),
        }),
    }
}

/// The candidate most like `word`, when it is close enough to be a typo.
///
/// Words are compared without case, `_` and `-` (so `max_attempts` finds
/// `maxAttempts`), by edit distance: at most 1 edit for words of up to 4
/// letters, else at most a third of the word's length (and at least 2), and
/// always fewer edits than the word has letters.
///
/// ```
/// use pgflow_core::strict_keys::closest;
/// assert_eq!(closest("dependOn", ["slug", "dependsOn"]), Some("dependsOn"));
/// assert_eq!(closest("max_attempts", ["maxAttempts"]), Some("maxAttempts"));
/// assert_eq!(closest("colour", ["slug", "steps"]), None);
/// ```
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let word = normalize(word);
    let len = word.len();
    let limit = if len <= 4 { 1 } else { (len / 3).max(2) };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &normalize(c)), c))
        // Fewer edits than letters: "a" is no typo of "b".
        .filter(|(d, _)| *d <= limit && *d < len)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn normalize(word: &str) -> Vec<char> {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance: insertions, deletions and substitutions, one row
/// at a time.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edit_distance_counts_edits() {
        let d = |a: &str, b: &str| edit_distance(&normalize(a), &normalize(b));
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("same", "same"), 0);
        assert_eq!(d("timout", "timeout"), 1);
    }

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        assert_eq!(
            closest("dependOn", DEF_STEP_KEYS.iter().copied()),
            Some("dependsOn")
        );
        assert_eq!(
            closest("depends_on", DEF_STEP_KEYS.iter().copied()),
            Some("dependsOn")
        );
        assert_eq!(
            closest("max_attempts", DEF_STEP_KEYS.iter().copied()),
            Some("maxAttempts")
        );
        assert_eq!(
            closest("timout", DEF_STEP_KEYS.iter().copied()),
            Some("timeout")
        );
        assert_eq!(closest("iff", DEF_STEP_KEYS.iter().copied()), Some("if"));
        assert_eq!(closest("handler", DEF_STEP_KEYS.iter().copied()), None);
        assert_eq!(closest("x", DEF_STEP_KEYS.iter().copied()), None);
        assert_eq!(closest("a", ["b", "c"]), None);
    }

    #[test]
    fn check_names_key_place_and_suggestion() {
        let object = json!({"slug": "b", "dependOn": ["a"]});
        let err = check(object.as_object().unwrap(), DEF_STEP_KEYS, "step \"b\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key \"dependOn\" in step \"b\": did you mean \"dependsOn\"?"
        );
        let object = json!({"colour": 1});
        let err = check(object.as_object().unwrap(), DEF_FLOW_KEYS, "the flow").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key \"colour\" in the flow (valid keys: slug, maxAttempts, baseDelay, timeout, steps)"
        );
        let object = json!({"slug": "b", "timeout": 3});
        assert!(check(object.as_object().unwrap(), DEF_STEP_KEYS, "step").is_ok());
    }
}
