//! Interleaved pairs: the arithmetic.
//!
//! Servers compared with each other are measured in rounds (`run.rs`): in each round every
//! server of the comparison is measured once, one after the other, under the same conditions.
//! Round `i` of a scenario and round `i` of its reference form a pair, and each pair gives one
//! ratio. Drift of the machine between rounds (other builds, frequency, the hypervisor) moves
//! both members of a pair together, so it cancels in the pair's ratio; what is left is spread
//! between pairs, reported as the min–max around the median.

/// What one measurement of a round contributes to the paired ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Requests per second the (valid) client got.
    pub(crate) rps: f64,
    /// Server CPU time per request served, in microseconds.
    pub(crate) cpu_per_req_us: Option<f64>,
}

/// Median, min and max of a set of per-pair figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// How many figures (pairs).
    pub(crate) n: usize,
}

impl Spread {
    /// The spread of `values` (non-finite ones ignored); `None` when nothing is left.
    pub(crate) fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// `0.93× (0.90–0.95, 5 pairs)`.
    pub(crate) fn ratio_text(&self) -> String {
        format!(
            "{:.2}× ({:.2}–{:.2}, {} pair{})",
            self.median,
            self.min,
            self.max,
            self.n,
            if self.n == 1 { "" } else { "s" }
        )
    }

    /// Whether the median reaches `min` (the target is judged on the median, not on the best
    /// or worst pair).
    pub(crate) fn meets(&self, min: f64) -> bool {
        self.median >= min
    }
}

/// Per-pair CPU ratios, `base` CPU/req ÷ `key` CPU/req (requests per server-CPU-second of
/// `key` over `base`'s), one per round both were measured in (round `i` with round `i`).
pub(crate) fn cpu_ratios(key: &[Sample], base: &[Sample]) -> Vec<f64> {
    key.iter()
        .zip(base)
        .filter_map(|(k, b)| {
            let (k, b) = (k.cpu_per_req_us?, b.cpu_per_req_us?);
            (k > 0.0).then(|| b / k)
        })
        .collect()
}

/// Per-pair req/s ratios, `key` req/s ÷ `base` req/s (what the clients got).
pub(crate) fn rps_ratios(key: &[Sample], base: &[Sample]) -> Vec<f64> {
    key.iter()
        .zip(base)
        .filter(|(_, b)| b.rps > 0.0)
        .map(|(k, b)| k.rps / b.rps)
        .collect()
}

/// Per-pair differences of CPU/req, `key` − `base`, in microseconds.
pub(crate) fn cpu_differences(key: &[Sample], base: &[Sample]) -> Vec<f64> {
    key.iter()
        .zip(base)
        .filter_map(|(k, b)| Some(k.cpu_per_req_us? - b.cpu_per_req_us?))
        .collect()
}

/// The median of `values` (non-finite ones ignored).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    Spread::of(values).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(rps: f64, cpu: f64) -> Sample {
        Sample {
            rps,
            cpu_per_req_us: Some(cpu),
        }
    }

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value() {
        let sp = Spread::of(&[0.95, 0.90, 0.93, 0.99, 0.91]).unwrap();
        assert_eq!(sp.median, 0.93);
        assert_eq!((sp.min, sp.max, sp.n), (0.90, 0.99, 5));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let sp = Spread::of(&[1.0, 4.0, 2.0, 3.0]).unwrap();
        assert!((sp.median - 2.5).abs() < 1e-12);
        assert_eq!((sp.min, sp.max, sp.n), (1.0, 4.0, 4));
    }

    #[test]
    fn non_finite_values_are_ignored_and_nothing_gives_none() {
        let sp = Spread::of(&[f64::NAN, 2.0, f64::INFINITY]).unwrap();
        assert_eq!((sp.median, sp.n), (2.0, 1));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn a_spread_reads_median_then_range_then_pairs() {
        let sp = Spread::of(&[0.95, 0.90, 0.93, 0.949, 0.91]).unwrap();
        assert_eq!(sp.ratio_text(), "0.93× (0.90–0.95, 5 pairs)");
        assert_eq!(
            Spread::of(&[1.18]).unwrap().ratio_text(),
            "1.18× (1.18–1.18, 1 pair)"
        );
    }

    #[test]
    fn the_target_is_judged_on_the_median() {
        // The best pair reaches the target, the median does not.
        let low = Spread::of(&[0.94, 0.99, 0.93]).unwrap();
        assert!(!low.meets(0.95));
        // The worst pair misses it, the median reaches it.
        let high = Spread::of(&[0.80, 0.96, 0.97]).unwrap();
        assert!(high.meets(0.95));
        assert!(Spread::of(&[0.95]).unwrap().meets(0.95));
    }

    #[test]
    fn cpu_ratios_pair_round_i_with_round_i() {
        // bare 6 µs, keygate 8 µs: 0.75; then 5 and 5: 1.0; then 6 and 12: 0.5.
        let bare = [s(160_000.0, 6.0), s(150_000.0, 5.0), s(150_000.0, 6.0)];
        let keygate = [s(120_000.0, 8.0), s(150_000.0, 5.0), s(100_000.0, 12.0)];
        assert_eq!(cpu_ratios(&keygate, &bare), vec![0.75, 1.0, 0.5]);
        let sp = Spread::of(&cpu_ratios(&keygate, &bare)).unwrap();
        assert_eq!((sp.median, sp.min, sp.max), (0.75, 0.5, 1.0));
        // Not the ratio of the medians (6 / 8 = 0.75 here by chance): change one round.
        let keygate2 = [s(1.0, 8.0), s(1.0, 10.0), s(1.0, 12.0)];
        assert_eq!(cpu_ratios(&keygate2, &bare), vec![0.75, 0.5, 0.5]);
    }

    #[test]
    fn rps_ratios_are_key_over_base() {
        let control = [s(40_000.0, 10.0), s(50_000.0, 10.0)];
        let forged = [s(36_000.0, 12.0), s(50_000.0, 10.0)];
        let r = rps_ratios(&forged, &control);
        assert!((r[0] - 0.9).abs() < 1e-12 && (r[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn missing_or_zero_figures_give_no_pair() {
        let none = Sample {
            rps: 0.0,
            cpu_per_req_us: None,
        };
        assert!(cpu_ratios(&[s(1.0, 0.0), none], &[s(1.0, 5.0), s(1.0, 5.0)]).is_empty());
        assert!(rps_ratios(&[s(1.0, 1.0)], &[none]).is_empty());
        // Unequal lengths: only complete pairs count.
        assert_eq!(
            cpu_ratios(&[s(1.0, 2.0)], &[s(1.0, 1.0), s(1.0, 1.0)]).len(),
            1
        );
    }

    #[test]
    fn cpu_differences_are_key_minus_base() {
        let d = cpu_differences(&[s(1.0, 8.2), s(1.0, 8.0)], &[s(1.0, 8.1), s(1.0, 8.1)]);
        assert!((d[0] - 0.1).abs() < 1e-9 && (d[1] + 0.1).abs() < 1e-9);
    }
}
