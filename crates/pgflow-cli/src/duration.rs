//! Durations on the command line: `humantime` syntax (`30s`, `7d`, `1h 30m`).

use std::time::Duration;

/// Parses a `humantime` duration, with a hint when the unit is missing
/// (`7`), the usual slip.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| match e {
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("missing unit in {text:?}: use e.g. 7d, 12h, 30m or 45s")
        }
        e => format!("{e} in {text:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units_and_combinations() {
        assert_eq!(parse("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse("1w 2d").unwrap().as_secs(), 9 * 86_400);
        assert_eq!(parse("0s").unwrap().as_secs(), 0);
    }

    #[test]
    fn ages_without_a_unit_or_with_garbage_are_refused() {
        assert!(parse("7").unwrap_err().contains("missing unit"));
        assert!(parse("").is_err());
        assert!(parse("d7").is_err());
        assert!(parse("3 fortnights").is_err());
    }
}
