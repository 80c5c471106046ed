//! Contingency-table tests as base R's `chisq.test` and `fisher.test` (two-sided).
//!
//! Fisher's p-value sums the probabilities of all tables with the observed margins that are no
//! more likely than the observed one (relative tolerance 1e-7, as R). For 2×2 the conditional
//! maximum-likelihood odds ratio is found with R's own root finder and bracket, so it agrees
//! with `fisher.test()$estimate` to the digit. Tables with two rows (or two columns) of any width
//! are enumerated column by column, skipping whole branches whose every completion is below
//! (summed in closed form) or above the observed probability.
use crate::zeroin::zeroin;
use crate::{chisq_upper, StatsError};
use statrs::function::gamma::ln_gamma;

/// A contingency table of counts, `counts[row][col]`.
pub type Table = Vec<Vec<u64>>;

/// Cross-tabulates two label columns; levels ordered by [`crate::groups::group_rows`].
pub fn cross_tabulate(rows: &[usize], cols: &[usize], n_rows: usize, n_cols: usize) -> Table {
    let mut t = vec![vec![0u64; n_cols]; n_rows];
    for (&r, &c) in rows.iter().zip(cols) {
        t[r][c] += 1;
    }
    t
}

/// Pearson's chi-square test.
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: usize,
    pub p: f64,
}

/// `chisq.test(table, correct = yates)`: Yates' continuity correction only applies to 2×2.
pub fn chi_square(table: &Table, yates: bool) -> Result<ChiSquare, StatsError> {
    let nr = table.len();
    let nc = table.first().map_or(0, Vec::len);
    if nr < 2 || nc < 2 || table.iter().any(|r| r.len() != nc) {
        return Err(StatsError::InvalidArgument(
            "chi-square needs a table with at least 2 rows and 2 columns".into(),
        ));
    }
    let n: f64 = table.iter().flatten().map(|v| *v as f64).sum();
    let row_sums: Vec<f64> = table.iter().map(|r| r.iter().map(|v| *v as f64).sum()).collect();
    let col_sums: Vec<f64> =
        (0..nc).map(|j| table.iter().map(|r| r[j] as f64).sum()).collect();
    let expected = |i: usize, j: usize| row_sums[i] * col_sums[j] / n;
    let correction = if yates && nr == 2 && nc == 2 {
        let mut smallest = 0.5f64;
        for i in 0..nr {
            for j in 0..nc {
                smallest = smallest.min((table[i][j] as f64 - expected(i, j)).abs());
            }
        }
        smallest
    } else {
        0.0
    };
    let mut statistic = 0.0;
    for i in 0..nr {
        for j in 0..nc {
            let e = expected(i, j);
            let dev = (table[i][j] as f64 - e).abs() - correction;
            statistic += dev * dev / e;
        }
    }
    let df = (nr - 1) * (nc - 1);
    Ok(ChiSquare { statistic, df, p: chisq_upper(statistic, df as f64) })
}

/// Fisher's exact test.
#[derive(Debug, Clone, PartialEq)]
pub struct Fisher {
    pub p: f64,
    /// Conditional MLE odds ratio for 2×2 (may be 0 or +∞), `None` for larger tables.
    pub odds_ratio: Option<f64>,
}

/// `fisher.test(table)` for 2×k or k×2 tables.
pub fn fisher_exact(table: &Table) -> Result<Fisher, StatsError> {
    let nr = table.len();
    let nc = table.first().map_or(0, Vec::len);
    if nr < 2 || nc < 2 || table.iter().any(|r| r.len() != nc) {
        return Err(StatsError::InvalidArgument(
            "Fisher's test needs a table with at least 2 rows and 2 columns".into(),
        ));
    }
    // Work on two rows: transpose a k×2 table.
    let two_rows: Table = if nr == 2 {
        table.clone()
    } else if nc == 2 {
        vec![table.iter().map(|r| r[0]).collect(), table.iter().map(|r| r[1]).collect()]
    } else {
        return Err(StatsError::InvalidArgument(
            "Fisher's exact test is implemented for 2×k and k×2 tables".into(),
        ));
    };
    if nr == 2 && nc == 2 {
        return Ok(fisher_2x2(table));
    }
    Ok(Fisher { p: fisher_two_row_p(&two_rows), odds_ratio: None })
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// 2×2 as R: noncentral hypergeometric on the support of x[0][0].
fn fisher_2x2(t: &Table) -> Fisher {
    let m = t[0][0] + t[1][0];
    let n = t[0][1] + t[1][1];
    let k = t[0][0] + t[0][1];
    let x = t[0][0];
    let lo = k.saturating_sub(n);
    let hi = k.min(m);
    let support: Vec<f64> = (lo..=hi).map(|v| v as f64).collect();
    // log dhyper(support, m, n, k)
    let logdc: Vec<f64> =
        (lo..=hi).map(|s| ln_choose(m, s) + ln_choose(n, k - s) - ln_choose(m + n, k)).collect();
    let dnhyper = |ncp: f64| -> Vec<f64> {
        let d: Vec<f64> = logdc.iter().zip(&support).map(|(l, s)| l + ncp.ln() * s).collect();
        let max = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = d.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.into_iter().map(|v| v / sum).collect()
    };
    let mnhyper = |ncp: f64| -> f64 {
        if ncp == 0.0 {
            return lo as f64;
        }
        if ncp.is_infinite() {
            return hi as f64;
        }
        dnhyper(ncp).iter().zip(&support).map(|(d, s)| d * s).sum()
    };
    let d = dnhyper(1.0);
    let observed = d[(x - lo) as usize];
    let p: f64 = d.iter().filter(|v| **v <= observed * (1.0 + 1e-7)).sum();
    let xf = x as f64;
    let tol = f64::EPSILON.powf(0.25);
    let odds_ratio = if x == lo {
        0.0
    } else if x == hi {
        f64::INFINITY
    } else {
        let mu = mnhyper(1.0);
        if mu > xf {
            let f = |t: f64| mnhyper(t) - xf;
            zeroin(f, 0.0, 1.0, f(0.0), f(1.0), tol, 1000)
        } else if mu < xf {
            let f = |t: f64| mnhyper(1.0 / t) - xf;
            1.0 / zeroin(f, f64::EPSILON, 1.0, f(f64::EPSILON), f(1.0), tol, 1000)
        } else {
            1.0
        }
    };
    Fisher { p: p.min(1.0), odds_ratio: Some(odds_ratio) }
}

/// Two-sided p-value of a 2×k table by enumerating the first row given the margins.
fn fisher_two_row_p(t: &Table) -> f64 {
    let k = t[0].len();
    let cols: Vec<u64> = (0..k).map(|j| t[0][j] + t[1][j]).collect();
    let r1: u64 = t[0].iter().sum();
    let n: u64 = cols.iter().sum();
    let ln_total = ln_choose(n, r1);
    let observed: f64 = (0..k).map(|j| ln_choose(cols[j], t[0][j])).sum::<f64>() - ln_total;
    let threshold = observed + (1.0f64 + 1e-7).ln();
    // Best and worst completion of columns j.. with a given remaining row-1 sum.
    let r1u = r1 as usize;
    let mut best = vec![vec![f64::NEG_INFINITY; r1u + 1]; k + 1];
    let mut worst = vec![vec![f64::INFINITY; r1u + 1]; k + 1];
    best[k][0] = 0.0;
    worst[k][0] = 0.0;
    let mut rest_cols = vec![0u64; k + 1];
    for j in (0..k).rev() {
        rest_cols[j] = rest_cols[j + 1] + cols[j];
        for s in 0..=r1u {
            for x in 0..=cols[j].min(s as u64) {
                let tail = s - x as usize;
                if best[j + 1][tail] == f64::NEG_INFINITY {
                    continue;
                }
                let here = ln_choose(cols[j], x);
                best[j][s] = best[j][s].max(here + best[j + 1][tail]);
                worst[j][s] = worst[j][s].min(here + worst[j + 1][tail]);
            }
        }
    }
    struct Walk<'a> {
        cols: &'a [u64],
        rest_cols: &'a [u64],
        best: &'a [Vec<f64>],
        worst: &'a [Vec<f64>],
        threshold: f64,
        ln_total: f64,
    }
    fn walk(w: &Walk<'_>, j: usize, remaining: usize, prefix: f64) -> f64 {
        if w.best[j][remaining] == f64::NEG_INFINITY {
            return 0.0;
        }
        if prefix + w.best[j][remaining] - w.ln_total <= w.threshold {
            // Every completion qualifies: Vandermonde gives their total probability.
            return (prefix + ln_choose(w.rest_cols[j], remaining as u64) - w.ln_total).exp();
        }
        if prefix + w.worst[j][remaining] - w.ln_total > w.threshold {
            return 0.0;
        }
        let mut sum = 0.0;
        for x in 0..=w.cols[j].min(remaining as u64) {
            sum += walk(w, j + 1, remaining - x as usize, prefix + ln_choose(w.cols[j], x));
        }
        sum
    }
    let w = Walk { cols: &cols, rest_cols: &rest_cols, best: &best, worst: &worst, threshold, ln_total };
    walk(&w, 0, r1u, 0.0).min(1.0)
}
