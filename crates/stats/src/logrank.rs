//! k-sample log-rank test as R's `survdiff(Surv(time, status) ~ group)` (rho = 0):
//! observed and expected deaths per group, hypergeometric variance with ties, and the chi-square
//! over the groups with expected > 0 (one of them dropped as the reference; `df` = their number −1).
//! R solves the reduced variance matrix with `solve`; we use the generalised inverse of
//! survival's `cholesky2`, which gives the same number when the matrix is non-singular and a
//! defined one when it is not.
use crate::linalg::{quadratic_form_ginv, zeros};
use crate::{check_times, chisq_upper, order_by_time, StatsError};

/// Result of [`log_rank`]; vectors are indexed by group.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRank {
    pub chisq: f64,
    pub df: usize,
    /// `None` when df = 0 (no test), as R's `pchisq(0, 0)` is meaningless there.
    pub p: Option<f64>,
    pub n: Vec<usize>,
    pub observed: Vec<f64>,
    pub expected: Vec<f64>,
}

/// `group[i]` is the 0-based group index of row i (see [`crate::groups::group_rows`]).
pub fn log_rank(
    time: &[f64],
    event: &[bool],
    group: &[usize],
    n_groups: usize,
) -> Result<LogRank, StatsError> {
    check_times(time, event.len())?;
    check_times(time, group.len())?;
    if n_groups < 2 {
        return Err(StatsError::TooFewGroups("the log-rank test needs at least 2 groups".into()));
    }
    if let Some(g) = group.iter().find(|g| **g >= n_groups) {
        return Err(StatsError::InvalidArgument(format!("group index {g} out of range")));
    }
    let order = order_by_time(time);
    let total = time.len();
    let mut n = vec![0usize; n_groups];
    for &g in group {
        n[g] += 1;
    }
    let mut observed = vec![0.0; n_groups];
    let mut expected = vec![0.0; n_groups];
    let mut var = zeros(n_groups);
    let mut at_risk = n.clone();
    let mut nrisk = total;
    let mut pos = 0;
    let mut deaths_by_group = vec![0usize; n_groups];
    while pos < total {
        let t = time[order[pos]];
        let mut end = pos;
        let mut deaths = 0usize;
        deaths_by_group.iter_mut().for_each(|d| *d = 0);
        while end < total && time[order[end]] == t {
            let i = order[end];
            if event[i] {
                deaths += 1;
                deaths_by_group[group[i]] += 1;
            }
            end += 1;
        }
        if deaths > 0 {
            let d = deaths as f64;
            let nr = nrisk as f64;
            for k in 0..n_groups {
                observed[k] += deaths_by_group[k] as f64;
                expected[k] += d * at_risk[k] as f64 / nr;
            }
            if nrisk > 1 {
                for j in 0..n_groups {
                    let tmp = d * at_risk[j] as f64 * (nr - d) / (nr * (nr - 1.0));
                    var[j][j] += tmp;
                    for k in 0..n_groups {
                        var[j][k] -= tmp * at_risk[k] as f64 / nr;
                    }
                }
            }
        }
        for &i in &order[pos..end] {
            at_risk[group[i]] -= 1;
        }
        nrisk -= end - pos;
        pos = end;
    }
    let kept: Vec<usize> = (0..n_groups).filter(|&k| expected[k] > 0.0).collect();
    let df = kept.len().saturating_sub(1);
    let chisq = if kept.len() < 2 {
        0.0
    } else {
        let rest = &kept[1..];
        let diff: Vec<f64> = rest.iter().map(|&k| observed[k] - expected[k]).collect();
        let v: Vec<Vec<f64>> = rest.iter().map(|&j| rest.iter().map(|&k| var[j][k]).collect()).collect();
        quadratic_form_ginv(&v, &diff, 1e-12).0
    };
    let p = (df > 0).then(|| chisq_upper(chisq, df as f64));
    Ok(LogRank { chisq, df, p, n, observed, expected })
}
