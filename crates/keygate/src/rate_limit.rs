//! A key's own rate limit, written `N/period`: `1000/1m`, `10/1s`, `50000/1d`.
//!
//! The limit is stored with the key and shown in the Keys API and the CLI.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::parse_duration;

const MAX_REQUESTS: u32 = 1_000_000_000;
const MIN_PERIOD: Duration = Duration::from_secs(1);
const MAX_PERIOD: Duration = Duration::from_secs(86_400);

/// `N/period`: at most `requests` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    requests: u32,
    period: Duration,
}

impl RateLimit {
    /// Most requests a limit may name per period.
    pub const MAX_REQUESTS: u32 = MAX_REQUESTS;
    /// Shortest period: one second.
    pub const MIN_PERIOD: Duration = MIN_PERIOD;
    /// Longest period: one day.
    pub const MAX_PERIOD: Duration = MAX_PERIOD;
}

/// A rate limit string is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate limit {shown:?}: use requests/period with a whole number of requests (1 to {MAX_REQUESTS}) and a period from 1s to 1d, like 1000/1m or 10/1s")]
pub struct RateLimitError {
    shown: String,
}

impl RateLimit {
    /// `requests` per `period`; `None` outside 1..=[`RateLimit::MAX_REQUESTS`] or
    /// [`RateLimit::MIN_PERIOD`]..=[`RateLimit::MAX_PERIOD`], or when the period is not whole seconds.
    pub fn new(requests: u32, period: Duration) -> Option<Self> {
        let ok = (1..=MAX_REQUESTS).contains(&requests)
            && (MIN_PERIOD..=MAX_PERIOD).contains(&period)
            && period.subsec_nanos() == 0;
        ok.then_some(RateLimit { requests, period })
    }

    /// Requests allowed per period.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    /// Parses `N/period`, the period a whole number and a unit (`ms`, `s`, `m`, `h`, `d` or
    /// `w`); a unit alone means one of it: `100/m` is `100/1m`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RateLimitError {
            shown: s.chars().take(40).collect(),
        };
        let (n, period) = s.trim().split_once('/').ok_or_else(err)?;
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let requests: u32 = n.parse().map_err(|_| err())?;
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            parse_duration(period).map_err(|_| err())?
        } else {
            parse_duration(&format!("1{period}")).map_err(|_| err())?
        };
        RateLimit::new(requests, period).ok_or_else(err)
    }
}

impl fmt::Display for RateLimit {
    /// The canonical form: the period in the largest unit that divides it (`1000/1m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.period.as_secs();
        let (n, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
            .into_iter()
            .find(|(u, _)| secs.is_multiple_of(*u))
            .map_or((secs, "s"), |(u, name)| (secs / u, name));
        write!(f, "{}/{n}{unit}", self.requests)
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        let l: RateLimit = "1000/1m".parse().unwrap();
        assert_eq!((l.requests(), l.period()), (1000, Duration::from_secs(60)));
        assert_eq!("10/1s".parse::<RateLimit>().unwrap().to_string(), "10/1s");
        assert_eq!("5/m".parse::<RateLimit>().unwrap().to_string(), "5/1m");
        assert_eq!("7/120s".parse::<RateLimit>().unwrap().to_string(), "7/2m");
        assert_eq!("7/90s".parse::<RateLimit>().unwrap().to_string(), "7/90s");
    }

    #[test]
    fn refuses_what_cannot_be_enforced() {
        for bad in [
            "",
            "1000",
            "/1m",
            "0/1m",
            "-1/1m",
            "1.5/1m",
            "10/500ms",
            "10/2d",
            "10/0s",
            "x/1m",
            "10/1y",
            "99999999999/1s",
            "1000/1m/1",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn serializes_as_its_string() {
        let l: RateLimit = "1000/1m".parse().unwrap();
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"1000/1m\"");
        let back: RateLimit = serde_json::from_str("\"1000/60s\"").unwrap();
        assert_eq!(back, l);
        assert!(serde_json::from_str::<RateLimit>("\"0/1m\"").is_err());
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_limit(n in 1u32..=MAX_REQUESTS, secs in 1u64..=86_400) {
            let l = RateLimit::new(n, Duration::from_secs(secs)).unwrap();
            prop_assert_eq!(l.to_string().parse::<RateLimit>().unwrap(), l);
        }
    }
}
