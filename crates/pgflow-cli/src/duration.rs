//! Parses durations such as `7d`, `12h`, `30m`, `90s`, `1w` or `1h30m`.

use std::time::Duration;

/// Parses a duration made of `<number><unit>` parts, units `w`, `d`, `h`,
/// `m`, `s` (and long forms like `days`, `hours`, `min`, `sec`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(pgflow_cli::duration::parse("1h30m").unwrap(), Duration::from_secs(5400));
/// assert!(pgflow_cli::duration::parse("7").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number in {text:?}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number too large in {text:?}"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "w" | "week" | "weeks" => 7 * 86_400,
            "d" | "day" | "days" => 86_400,
            "h" | "hour" | "hours" => 3600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "" => {
                return Err(format!(
                    "missing unit in {text:?}: use e.g. 7d, 12h, 30m or 45s"
                ))
            }
            other => return Err(format!("unknown unit {other:?} in {text:?}")),
        };
        total = number
            .checked_mul(secs)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("duration too large: {text:?}"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(parse("12h").unwrap().as_secs(), 12 * 3600);
        assert_eq!(parse("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse("45s").unwrap().as_secs(), 45);
        assert_eq!(parse("1w 2d").unwrap().as_secs(), 9 * 86_400);
        assert_eq!(parse("0s").unwrap().as_secs(), 0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("").is_err());
        assert!(parse("7").is_err());
        assert!(parse("d7").is_err());
        assert!(parse("3 fortnights").is_err());
    }
}
