//! Durations as scenario files write them: a whole number and a unit, `"500ms"`, `"45s"`,
//! `"30m"`, `"6h"`, `"7d"`, optionally signed (`"-90s"`) where a value may be negative (clock
//! offsets). Bare numbers are refused: `60` could be seconds or minutes, and a scenario that
//! silently runs for an hour instead of a minute is worse than one that does not start.
//!
//! Deliberately absent: compound forms (`"1h30m"`) and fractions; `"90m"` says the same.

use std::ops::Range;

use meridian_shared::config::{Issues, SourceFile};
use toml::Spanned;

/// Milliseconds in each accepted unit, longest suffix first so `ms` is not read as `m`.
const UNITS: [(&str, i64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses `"45s"` (or `"-90s"` when `signed`) into milliseconds.
pub fn parse(text: &str, signed: bool) -> Result<i64, String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        Some(_) => {
            return Err(format!(
                "{text:?} is negative; a duration here must be >= 0"
            ));
        }
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = body.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = body.split_at(digits);
    let example = if signed { "\"-90s\"" } else { "\"45s\"" };
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration such as {example}: it must start with a whole number"
        ));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(if unit.is_empty() {
            format!(
                "{text:?} has no unit; write it as {number}ms, {number}s, {number}m, {number}h or {number}d"
            )
        } else {
            format!("{text:?} has an unknown unit {unit:?}; use ms, s, m, h or d")
        });
    };
    let value = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|ms| *ms <= MAX_MS)
        .ok_or_else(|| format!("{text:?} is too long (at most 10000d)"))?;
    Ok(if negative { -value } else { value })
}

/// Longest duration accepted, ms (10 000 days): far beyond any scenario, far below overflow.
const MAX_MS: i64 = 10_000 * 86_400_000;

/// A duration written in a scenario file: a string with a unit, or (an error) anything else.
/// Kept as a TOML value so that a bare number gets a message of its own rather than serde's
/// "invalid type".
pub type RawDuration = Spanned<toml::Value>;

/// Reads a duration value, recording an issue (and returning `None`) when it is not one.
pub fn read(
    src: &SourceFile,
    issues: &mut Issues,
    value: &RawDuration,
    field: &str,
    signed: bool,
) -> Option<i64> {
    let result = match value.get_ref() {
        toml::Value::String(s) => parse(s, signed),
        toml::Value::Integer(n) => Err(format!(
            "a bare number ({n}) is not a duration; write it with a unit, such as \"{n}s\""
        )),
        toml::Value::Float(f) => Err(format!(
            "a bare number ({f}) is not a duration; write it with a unit, such as \"45s\""
        )),
        other => Err(format!(
            "expected a duration string such as \"45s\", found {}",
            other.type_str()
        )),
    };
    result
        .map_err(|message| issues.push(src.issue(span(value), field, message)))
        .ok()
}

/// Like [`read`], for a duration that must be strictly positive.
pub fn read_positive(
    src: &SourceFile,
    issues: &mut Issues,
    value: &RawDuration,
    field: &str,
) -> Option<i64> {
    let ms = read(src, issues, value, field, false)?;
    if ms == 0 {
        issues.push(src.issue(span(value), field, "must be longer than zero"));
        return None;
    }
    Some(ms)
}

fn span(value: &RawDuration) -> Range<usize> {
    value.span()
}

/// Renders milliseconds back in the largest unit that divides them into at least two, for
/// messages (`"60s"` rather than `"1m"`, `"10m"`, `"2d"`).
pub fn format(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    for &(unit, scale) in UNITS.iter().rev() {
        let scale = scale.unsigned_abs();
        if abs >= 2 * scale && abs.is_multiple_of(scale) {
            return format!("{sign}{}{unit}", abs / scale);
        }
    }
    format!("{sign}{abs}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        for (text, ms) in [
            ("500ms", 500),
            ("45s", 45_000),
            ("30m", 1_800_000),
            ("6h", 21_600_000),
            ("7d", 604_800_000),
            ("0s", 0),
        ] {
            assert_eq!(parse(text, false), Ok(ms), "{text}");
        }
    }

    #[test]
    fn signs_only_where_allowed() {
        assert_eq!(parse("-90s", true), Ok(-90_000));
        assert_eq!(parse("+90s", true), Ok(90_000));
        assert!(parse("-90s", false).unwrap_err().contains("negative"));
    }

    #[test]
    fn malformed_durations_say_why() {
        assert!(parse("60", false).unwrap_err().contains("has no unit"));
        assert!(parse("5min", false).unwrap_err().contains("unknown unit"));
        assert!(parse("s", false).unwrap_err().contains("whole number"));
        assert!(parse("1.5s", false).unwrap_err().contains("unknown unit"));
        assert!(parse("1h30m", false).unwrap_err().contains("unknown unit"));
        assert!(
            parse("99999999999d", false)
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn bare_numbers_are_refused_with_a_hint() {
        let src = SourceFile::new("s.toml", "d = 60\n");
        let table: toml::Table = toml::from_str(src.text()).unwrap();
        let value = Spanned::new(4..6, table["d"].clone());
        let mut issues = Issues::default();
        assert_eq!(read(&src, &mut issues, &value, "d", false), None);
        let err = issues.finish(()).unwrap_err().to_string();
        assert_eq!(
            err,
            "s.toml:1:5: d: a bare number (60) is not a duration; write it with a unit, such as \"60s\""
        );
    }

    #[test]
    fn format_picks_the_largest_exact_unit() {
        assert_eq!(format(90_000), "90s");
        assert_eq!(format(1_800_000), "30m");
        assert_eq!(format(-90_000), "-90s");
        assert_eq!(format(1_500), "1500ms");
        assert_eq!(format(60_000), "60s");
        assert_eq!(format(86_400_000), "24h");
        assert_eq!(format(0), "0ms");
    }
}
