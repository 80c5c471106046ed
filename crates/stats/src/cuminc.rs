//! Cumulative incidence with competing risks as `cmprsk::cuminc` (cmprsk 2.2):
//! Aalen–Johansen estimate per cause and group, Gray's (1988) variance estimate, and Gray's
//! k-sample test per cause (rho = 0, one stratum).
//!
//! Written from the published method and cmprsk's documented algorithm (`cinc`, `crstm`): the
//! variance is accumulated in three running sums over the distinct times, the test score
//! compares each group's cause-specific subdistribution hazard with the pooled one. Where a
//! group's risk set is empty the group contributes nothing (as cmprsk); a `0 × ∞` term is skipped
//! (the guard cmprsk 2.2-12 added).
use crate::linalg::{cholesky2, chsolve2, zeros, Matrix};
use crate::{check_times, chisq_upper, order_by_time, StatsError};

/// One cumulative incidence curve, at the distinct times with an event of `cause` in `group`.
#[derive(Debug, Clone, PartialEq)]
pub struct CifCurve {
    pub group: usize,
    pub cause: u32,
    pub times: Vec<f64>,
    pub cif: Vec<f64>,
    pub variance: Vec<f64>,
}

/// Gray's test of equal cumulative incidence of `cause` across the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayTest {
    pub cause: u32,
    /// `None` when the score variance is singular (cmprsk reports −1 there).
    pub stat: Option<f64>,
    pub df: usize,
    pub p: Option<f64>,
}

/// All curves (cause-major, then group, as cmprsk lists them) and the tests (only with ≥ 2 groups).
#[derive(Debug, Clone, PartialEq)]
pub struct CumInc {
    pub causes: Vec<u32>,
    pub curves: Vec<CifCurve>,
    pub gray_tests: Vec<GrayTest>,
}

/// `status[i]`: 0 censored, k ≥ 1 failure from cause k. `group[i]` in `0..n_groups`.
pub fn cumulative_incidence(
    time: &[f64],
    status: &[u32],
    group: &[usize],
    n_groups: usize,
) -> Result<CumInc, StatsError> {
    check_times(time, status.len())?;
    check_times(time, group.len())?;
    if let Some(g) = group.iter().find(|g| **g >= n_groups) {
        return Err(StatsError::InvalidArgument(format!("group index {g} out of range")));
    }
    let order = order_by_time(time);
    let t: Vec<f64> = order.iter().map(|&i| time[i]).collect();
    let s: Vec<u32> = order.iter().map(|&i| status[i]).collect();
    let g: Vec<usize> = order.iter().map(|&i| group[i]).collect();
    let mut causes: Vec<u32> = s.iter().copied().filter(|c| *c != 0).collect();
    causes.sort_unstable();
    causes.dedup();
    let present: Vec<usize> = (0..n_groups).filter(|k| g.contains(k)).collect();
    let mut curves = Vec::new();
    let mut gray_tests = Vec::new();
    for &cause in &causes {
        for &k in &present {
            let rows: Vec<usize> = (0..t.len()).filter(|&i| g[i] == k).collect();
            let yt: Vec<f64> = rows.iter().map(|&i| t[i]).collect();
            let any: Vec<bool> = rows.iter().map(|&i| s[i] != 0).collect();
            let this: Vec<bool> = rows.iter().map(|&i| s[i] == cause).collect();
            let (times, cif, variance) = aalen_johansen(&yt, &any, &this);
            curves.push(CifCurve { group: k, cause, times, cif, variance });
        }
        if present.len() > 1 {
            // Gray's test on the groups present, recoded 0..ng.
            let mut recode = vec![usize::MAX; n_groups];
            for (new, &old) in present.iter().enumerate() {
                recode[old] = new;
            }
            let codes: Vec<u8> =
                s.iter().map(|&c| if c == 0 { 0 } else if c == cause { 1 } else { 2 }).collect();
            let groups: Vec<usize> = g.iter().map(|&k| recode[k]).collect();
            let (score, var) = gray_score(&t, &codes, &groups, present.len());
            let ng1 = present.len() - 1;
            let mut factor = var.clone();
            let rank = cholesky2(&mut factor, 1e-7);
            let stat = (rank == ng1 as i64).then(|| {
                let mut x = score.clone();
                chsolve2(&factor, &mut x);
                score.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
            });
            let p = stat.map(|v| chisq_upper(v, ng1 as f64));
            gray_tests.push(GrayTest { cause, stat, df: ng1, p });
        }
    }
    Ok(CumInc { causes, curves, gray_tests })
}

/// Aalen–Johansen CIF of one cause in one group with Gray's variance (times sorted ascending).
fn aalen_johansen(y: &[f64], any: &[bool], this: &[bool]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = y.len();
    let mut times = Vec::new();
    let mut cif = Vec::new();
    let mut variance = Vec::new();
    let (mut fk, mut f) = (1.0f64, 0.0f64);
    let (mut v1, mut v2, mut v3) = (0.0f64, 0.0f64, 0.0f64);
    let mut rs = n as f64;
    let mut start = 0;
    while start < n {
        let mut end = start;
        let (mut nd1, mut nd2) = (0usize, 0usize);
        while end < n && y[end] == y[start] {
            if this[end] {
                nd1 += 1;
            } else if any[end] {
                nd2 += 1;
            }
            end += 1;
        }
        let nd = nd1 + nd2;
        if nd > 0 {
            let fkn = fk * (rs - nd as f64) / rs;
            if nd1 > 0 {
                f += fk * nd1 as f64 / rs;
            }
            if nd2 > 0 && fkn > 0.0 {
                let t5 = if nd2 > 1 { 1.0 - (nd2 as f64 - 1.0) / (rs - 1.0) } else { 1.0 };
                let t6 = fk * fk * t5 * nd2 as f64 / (rs * rs);
                let t3 = 1.0 / fkn;
                let t4 = f / fkn;
                v1 += t4 * t4 * t6;
                v2 += t3 * t4 * t6;
                v3 += t3 * t3 * t6;
            }
            if nd1 > 0 {
                let t5 = if nd1 > 1 { 1.0 - (nd1 as f64 - 1.0) / (rs - 1.0) } else { 1.0 };
                let t6 = fk * fk * t5 * nd1 as f64 / (rs * rs);
                let t3 = if fkn > 0.0 { 1.0 / fkn } else { 0.0 };
                let t4 = 1.0 + t3 * f;
                v1 += t4 * t4 * t6;
                v2 += t3 * t4 * t6;
                v3 += t3 * t3 * t6;
                times.push(y[start]);
                cif.push(f);
                variance.push(v1 + f * f * v3 - 2.0 * f * v2);
            }
            fk = fkn;
        }
        rs = (n - end) as f64;
        start = end;
    }
    (times, cif, variance)
}

/// Gray's score for the first `ng − 1` groups and its variance (codes: 0 censored, 1 cause of
/// interest, 2 other cause; times sorted ascending).
fn gray_score(y: &[f64], m: &[u8], ig: &[usize], ng: usize) -> (Vec<f64>, Matrix) {
    let n = y.len();
    let ng1 = ng - 1;
    let mut rs = vec![0i64; ng];
    for &k in ig {
        rs[k] += 1;
    }
    let mut s = vec![0.0; ng1];
    let mut v = zeros(ng1);
    let mut f1m = vec![0.0; ng];
    let mut f1 = vec![0.0; ng];
    let mut skmm = vec![1.0; ng];
    let mut skm = vec![1.0; ng];
    let mut v3 = vec![0.0; ng];
    let mut v2 = vec![vec![0.0; ng]; ng1];
    let mut c = zeros(ng);
    let mut a = zeros(ng);
    let mut fm = 0.0f64;
    let mut d = vec![[0i64; 3]; ng];
    let mut ll = 0;
    while ll < n {
        let mut lu = ll;
        while lu + 1 < n && y[lu + 1] <= y[ll] {
            lu += 1;
        }
        d.iter_mut().for_each(|row| *row = [0; 3]);
        for i in ll..=lu {
            d[ig[i]][m[i] as usize] += 1;
        }
        let nd1: i64 = d.iter().map(|r| r[1]).sum();
        let nd2: i64 = d.iter().map(|r| r[2]).sum();
        if nd1 != 0 || nd2 != 0 {
            let mut tr = 0.0;
            let mut tq = 0.0;
            for i in 0..ng {
                if rs[i] <= 0 {
                    continue;
                }
                let td = (d[i][1] + d[i][2]) as f64;
                let rsi = rs[i] as f64;
                skm[i] = skmm[i] * (rsi - td) / rsi;
                f1[i] = f1m[i] + skmm[i] * d[i][1] as f64 / rsi;
                tr += rsi / skmm[i];
                tq += rsi * (1.0 - f1m[i]) / skmm[i];
            }
            let f = fm + nd1 as f64 / tr;
            let fb = 1.0; // (1 - fm)^rho with rho = 0
            for i in 0..ng {
                for j in i..ng {
                    a[i][j] = 0.0;
                }
                if rs[i] <= 0 {
                    continue;
                }
                let t1 = rs[i] as f64 / skmm[i];
                a[i][i] = fb * t1 * (1.0 - t1 / tr);
                if a[i][i] != 0.0 {
                    c[i][i] += a[i][i] * nd1 as f64 / (tr * (1.0 - fm));
                }
                for j in (i + 1)..ng {
                    if rs[j] <= 0 {
                        continue;
                    }
                    a[i][j] = -fb * t1 * rs[j] as f64 / (skmm[j] * tr);
                    if a[i][j] != 0.0 {
                        c[i][j] += a[i][j] * nd1 as f64 / (tr * (1.0 - fm));
                    }
                }
            }
            for i in 1..ng {
                for j in 0..i {
                    a[i][j] = a[j][i];
                    c[i][j] = c[j][i];
                }
            }
            for i in 0..ng1 {
                if rs[i] > 0 {
                    s[i] += fb
                        * (d[i][1] as f64
                            - nd1 as f64 * rs[i] as f64 * (1.0 - f1m[i]) / (skmm[i] * tq));
                }
            }
            if nd1 > 0 {
                for k in 0..ng {
                    if rs[k] <= 0 {
                        continue;
                    }
                    let t4 = if skm[k] > 0.0 { 1.0 - (1.0 - f) / skm[k] } else { 1.0 };
                    let t5 = if nd1 > 1 {
                        1.0 - (nd1 - 1) as f64 / (tr * skmm[k] - 1.0)
                    } else {
                        1.0
                    };
                    let t3 = t5 * skmm[k] * nd1 as f64 / (tr * rs[k] as f64);
                    v3[k] += t4 * t4 * t3;
                    for i in 0..ng1 {
                        let t1 = a[i][k] - t4 * c[i][k];
                        v2[i][k] += t1 * t4 * t3;
                        for j in 0..=i {
                            let t2 = a[j][k] - t4 * c[j][k];
                            v[i][j] += t1 * t2 * t3;
                        }
                    }
                }
            }
            if nd2 > 0 {
                for k in 0..ng {
                    if skm[k] <= 0.0 || d[k][2] <= 0 {
                        continue;
                    }
                    let t4 = (1.0 - f) / skm[k];
                    let t5 = if d[k][2] > 1 {
                        1.0 - (d[k][2] as f64 - 1.0) / (rs[k] as f64 - 1.0)
                    } else {
                        1.0
                    };
                    let t6 = rs[k] as f64;
                    let t3 = t5 * (skmm[k] * skmm[k] * d[k][2] as f64) / (t6 * t6);
                    v3[k] += t4 * t4 * t3;
                    for i in 0..ng1 {
                        let t1 = t4 * c[i][k];
                        v2[i][k] -= t1 * t4 * t3;
                        for j in 0..=i {
                            let t2 = t4 * c[j][k];
                            v[i][j] += t1 * t2 * t3;
                        }
                    }
                }
            }
            fm = f;
        }
        if lu + 1 >= n {
            break;
        }
        for i in ll..=lu {
            rs[ig[i]] -= 1;
        }
        f1m[..ng].copy_from_slice(&f1[..ng]);
        skmm[..ng].copy_from_slice(&skm[..ng]);
        ll = lu + 1;
    }
    for i in 0..ng1 {
        for j in 0..=i {
            for k in 0..ng {
                v[i][j] += c[i][k] * c[j][k] * v3[k];
                v[i][j] += c[i][k] * v2[j][k];
                v[i][j] += c[j][k] * v2[i][k];
            }
        }
    }
    for i in 0..ng1 {
        for j in 0..i {
            v[j][i] = v[i][j];
        }
    }
    (s, v)
}
