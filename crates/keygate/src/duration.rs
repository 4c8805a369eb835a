//! Human durations for configuration and the CLI: `90d`, `24h`, `30m`, `45s`, `500ms`.

use std::time::Duration;

/// A duration string is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {shown:?}: use a whole number and a unit, like 90d, 24h, 30m, 45s or 500ms"
)]
pub struct DurationError {
    shown: String,
}

/// Longest accepted duration: 100 years.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`. Zero is allowed;
/// anything over 100 years, negative, fractional or unit-less is refused.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(keygate::duration::parse_duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
/// assert!(keygate::duration::parse_duration("ten days").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        shown: s.chars().take(40).collect(),
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.len() > 12 {
        return Err(err());
    }
    let n: u64 = num.parse().map_err(|_| err())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(err()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(err)?;
    let d = Duration::from_millis(ms);
    if d > MAX_DURATION {
        return Err(err());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "",
            "d",
            "10",
            "-1d",
            "1.5h",
            "10x",
            "99999999999999d",
            "1 d",
            "1dd",
            "٣d",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn round_trips_seconds(n in 0u64..1_000_000) {
            prop_assert_eq!(parse_duration(&format!("{n}s")).unwrap(), Duration::from_secs(n));
        }
    }
}
