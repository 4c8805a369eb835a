//! The core's private `duration::parse_duration` (a rate limit's period, the Keys API's
//! `expires_in` and `grace`), compiled into this target from its source file since the module
//! is not public.
//!
//! Invariants: never panics; `Ok` is at most `MAX_DURATION`, and equals the number times the
//! unit the (trimmed) input spells, so nothing is rounded, wrapped or guessed.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/keygate/src/duration.rs"]
#[allow(dead_code)]
mod duration;

use duration::{parse_duration, MAX_DURATION};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = parse_duration(s) else {
        return;
    };
    assert!(d <= MAX_DURATION, "accepted more than the maximum: {d:?}");
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .expect("accepted a unit-less duration");
    let (num, unit) = t.split_at(split);
    let n: u128 = num.parse().expect("accepted a non-decimal number");
    let unit_ms: u128 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        other => panic!("accepted unknown unit {other:?}"),
    };
    assert_eq!(
        d.as_millis(),
        n * unit_ms,
        "value differs from number × unit"
    );
    assert_eq!(d, Duration::from_millis(d.as_millis() as u64));
});
