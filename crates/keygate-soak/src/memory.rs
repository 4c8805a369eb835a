//! Resident memory of this process, sampled over the run.

/// VmRSS of this process in KiB, from `/proc/self/status` (`None` off Linux).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Growth of resident memory over the second half of the series, in percent of the first
/// sample of that half: "flat once caches are full" means close to zero.
pub fn growth_over_last_half(samples: &[(u64, u64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (start, _) = samples[0];
    let (end, last) = samples[samples.len() - 1];
    let half = start + (end - start) / 2;
    let (_, first) = samples.iter().find(|(t, _)| *t >= half)?;
    if *first == 0 {
        return None;
    }
    Some((last as f64 - *first as f64) * 100.0 / *first as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_measured_from_the_middle_of_the_run() {
        let s = [(0, 100), (10, 200), (20, 400), (30, 410), (40, 420)];
        let g = growth_over_last_half(&s).unwrap();
        assert!((g - 5.0).abs() < 1e-9, "{g}");
    }

    #[test]
    fn growth_needs_two_samples() {
        assert_eq!(growth_over_last_half(&[(0, 100)]), None);
    }

    #[test]
    fn this_process_has_a_resident_size_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib().unwrap() > 0);
        }
    }
}
