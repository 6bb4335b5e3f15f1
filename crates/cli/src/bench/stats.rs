//! The arithmetic of the figures: percentiles, rounding, request counts.

use super::Counts;

/// Nearest-rank percentile of sorted `v`.
pub(super) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub(super) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

pub(super) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The requests counted between two snapshots of a counter.
pub(super) fn diff(end: &Counts, start: &Counts) -> Counts {
    end.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*start.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert_eq!(pct(&v, 1.0), 100.0);
        assert_eq!(pct(&[7.0], 0.5), 7.0);
    }
}
