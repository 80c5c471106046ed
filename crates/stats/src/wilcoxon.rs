//! Wilcoxon rank-sum (Mann–Whitney) test as R's `wilcox.test(x, y)` (two-sided, correct = TRUE):
//! W is the rank sum of the first group minus n₁(n₁+1)/2; exact null distribution when both
//! groups have fewer than 50 values and there are no ties, else the normal approximation with
//! continuity and tie correction.
use crate::StatsError;
use statrs::distribution::{ContinuousCDF, Normal};

/// Test result; `exact` tells which p-value R would have computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Wilcoxon {
    pub statistic: f64,
    pub p: f64,
    pub exact: bool,
}

/// `first` and `second` are the two samples (the first group in sorted order first).
pub fn rank_sum(first: &[f64], second: &[f64]) -> Result<Wilcoxon, StatsError> {
    if first.is_empty() || second.is_empty() {
        return Err(StatsError::TooFewGroups("both groups need at least one value".into()));
    }
    if first.iter().chain(second).any(|v| !v.is_finite()) {
        return Err(StatsError::NonFinite("value".into()));
    }
    let nx = first.len();
    let ny = second.len();
    let mut all: Vec<(f64, bool)> =
        first.iter().map(|v| (*v, true)).chain(second.iter().map(|v| (*v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mid-ranks and tie sizes.
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut ties = false;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let size = (j - i) as f64;
        let mid = (i + 1 + j) as f64 / 2.0;
        rank_sum_x += mid * all[i..j].iter().filter(|e| e.1).count() as f64;
        if j - i > 1 {
            ties = true;
            tie_term += size * size * size - size;
        }
        i = j;
    }
    let (nxf, nyf) = (nx as f64, ny as f64);
    let w = rank_sum_x - nxf * (nxf + 1.0) / 2.0;
    let exact = nx < 50 && ny < 50 && !ties;
    let p = if exact {
        let counts = rank_sum_counts(nx, ny);
        let total: f64 = counts.iter().sum();
        let cdf = |q: f64| -> f64 {
            if q < 0.0 {
                return 0.0;
            }
            let upto = (q.floor() as usize).min(counts.len() - 1);
            counts[..=upto].iter().sum::<f64>() / total
        };
        let one_sided =
            if w > nxf * nyf / 2.0 { 1.0 - cdf(w - 1.0) } else { cdf(w) };
        (2.0 * one_sided).min(1.0)
    } else {
        let z = w - nxf * nyf / 2.0;
        let n = nxf + nyf;
        let sigma = ((nxf * nyf / 12.0) * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
        let correction = 0.5 * z.signum() * if z == 0.0 { 0.0 } else { 1.0 };
        let z = (z - correction) / sigma;
        let normal = Normal::standard();
        2.0 * normal.cdf(z).min(normal.sf(z))
    };
    Ok(Wilcoxon { statistic: w, p, exact })
}

/// Number of arrangements with W = w, w = 0..=nx·ny (R's `cwilcox`): the largest of the pooled
/// values is either an x, which then exceeds all j y-values (adds j to W), or a y (adds nothing).
/// Only additions of positive counts, so no cancellation even for 49 × 49.
fn rank_sum_counts(nx: usize, ny: usize) -> Vec<f64> {
    let max_w = nx * ny;
    // prev[j][w] = count for (i - 1) x-values and j y-values; cur likewise for i.
    let mut prev: Vec<Vec<f64>> = (0..=ny).map(|_| {
        let mut v = vec![0.0; max_w + 1];
        v[0] = 1.0;
        v
    }).collect();
    for _i in 1..=nx {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max_w + 1]; ny + 1];
        for j in 0..=ny {
            for w in 0..=max_w {
                let mut c = if w >= j { prev[j][w - j] } else { 0.0 };
                if j > 0 {
                    c += cur[j - 1][w];
                }
                cur[j][w] = c;
            }
        }
        prev = cur;
    }
    prev.swap_remove(ny)
}
