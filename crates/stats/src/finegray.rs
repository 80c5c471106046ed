//! Fine–Gray proportional subdistribution hazards regression as `cmprsk::crr` (cmprsk 2.2,
//! no time-varying terms, one censoring group).
//!
//! Same estimator, same iteration, so the same numbers: subjects failing from a competing cause
//! stay in the risk set after their failure with weight `G(τ−)/G(tᵢ−)`, `G` the Kaplan–Meier
//! estimate of the censoring distribution taken just before each time; Breslow partial likelihood;
//! Newton–Raphson from β = 0 with backtracking (Armijo factor 1e-4, halving at most 20 times),
//! converged when `max|score·max(|β|,1)| < max(|loglik|,1)·gtol` (gtol 1e-6, at most 10 steps);
//! sandwich variance `I⁻¹ (Σ ηᵢηᵢ') I⁻¹` with ηᵢ the score residual plus the correction for the
//! estimated censoring distribution.
//!
//! cmprsk evaluates these sums with nested loops over subjects (O(n²)–O(n³)); here every sum is
//! a prefix or suffix sum over the sorted times, so one evaluation costs O(n·p²).
use crate::linalg::{inverse, solve, zeros, Matrix};
use crate::{check_times, normal_two_sided, order_by_time, z_for_level, StatsError};

/// Controls, with `crr()`'s defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineGrayConfig {
    pub gtol: f64,
    pub max_iter: usize,
    pub conf_level: f64,
}

impl Default for FineGrayConfig {
    fn default() -> Self {
        FineGrayConfig { gtol: 1e-6, max_iter: 10, conf_level: 0.95 }
    }
}

/// One row of the coefficient table (`summary.crr`).
#[derive(Debug, Clone, PartialEq)]
pub struct FineGrayCoefficient {
    pub name: String,
    pub coef: f64,
    pub shr: f64,
    pub se: f64,
    pub z: f64,
    pub p: f64,
    pub shr_ci: [f64; 2],
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct FineGrayFit {
    pub n: usize,
    pub cause: u32,
    pub coefficients: Vec<FineGrayCoefficient>,
    /// Pseudo log-likelihood at β = 0 and at the estimate (`loglik.null`, `loglik`).
    pub loglik: [f64; 2],
    pub iterations: usize,
    pub converged: bool,
}

/// Sorted data: times, codes (0 censored, 1 cause of interest, 2 competing) and the censoring
/// survival just before each time.
struct Prepared {
    time: Vec<f64>,
    code: Vec<u8>,
    g_minus: Vec<f64>,
    x: Vec<f64>,
    p: usize,
    /// Distinct times of the cause of interest: (first row index, number failing).
    fail_times: Vec<(usize, usize)>,
}

/// Negative log pseudo-likelihood, its gradient and Hessian (cmprsk's `crrfsv`).
struct Evaluation {
    neg_loglik: f64,
    score: Vec<f64>,
    hessian: Matrix,
}

/// Fits the subdistribution hazard of `cause`. `status[i]`: 0 censored, k ≥ 1 cause k.
pub fn fine_gray(
    time: &[f64],
    status: &[u32],
    cause: u32,
    covariates: &[crate::cox::Covariate],
    cfg: &FineGrayConfig,
) -> Result<FineGrayFit, StatsError> {
    check_times(time, status.len())?;
    if covariates.is_empty() {
        return Err(StatsError::InvalidArgument("Fine–Gray needs at least one covariate".into()));
    }
    for c in covariates {
        check_times(time, c.values.len())?;
        if c.values.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::NonFinite(c.name.clone()));
        }
    }
    if cause == 0 || !status.contains(&cause) {
        return Err(StatsError::InvalidArgument(format!("no failures from cause {cause}")));
    }
    let data = prepare(time, status, cause, covariates);
    let p = data.p;
    let mut beta = vec![0.0; p];
    let mut converged = false;
    let mut iterations = 0;
    for ll in 0..=cfg.max_iter {
        iterations = ll;
        let ev = evaluate(&data, &beta, true);
        let grad_size = ev
            .score
            .iter()
            .zip(&beta)
            .map(|(s, b)| s.abs() * b.abs().max(1.0))
            .fold(f64::NEG_INFINITY, f64::max);
        if grad_size < ev.neg_loglik.abs().max(1.0) * cfg.gtol {
            converged = true;
            break;
        }
        if ll == cfg.max_iter {
            break;
        }
        let Some(newton) = solve(&ev.hessian, &ev.score) else { break };
        let mut step: Vec<f64> = newton.iter().map(|v| -v).collect();
        let slope: f64 = step.iter().zip(&ev.score).map(|(a, b)| a * b).sum();
        let mut candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
        let mut value = evaluate(&data, &candidate, false).neg_loglik;
        let mut halvings = 0;
        let mut threshold = ev.neg_loglik + 1e-4 * slope;
        // Written negated on purpose: a NaN objective also halves the step.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        while !(value <= threshold) {
            halvings += 1;
            step.iter_mut().for_each(|s| *s *= 0.5);
            candidate = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
            value = evaluate(&data, &candidate, false).neg_loglik;
            // Armijo condition with the slope of the shortened step, as crr.
            threshold = ev.neg_loglik + 1e-4 * slope_of(&step, &ev.score);
            if halvings > 20 {
                break;
            }
        }
        if halvings > 20 {
            break;
        }
        beta = candidate;
    }
    let final_eval = evaluate(&data, &beta, true);
    let null_eval = evaluate(&data, &vec![0.0; p], false);
    let variance = sandwich(&data, &beta, &final_eval.hessian)
        .unwrap_or_else(|| vec![vec![f64::NAN; p]; p]);
    let z_crit = z_for_level(cfg.conf_level);
    let coefficients = covariates
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let b = beta[j];
            let se = variance[j][j].sqrt();
            let z = b / se;
            FineGrayCoefficient {
                name: c.name.clone(),
                coef: b,
                shr: b.exp(),
                se,
                z,
                p: normal_two_sided(z),
                shr_ci: [(b - z_crit * se).exp(), (b + z_crit * se).exp()],
            }
        })
        .collect();
    Ok(FineGrayFit {
        n: time.len(),
        cause,
        coefficients,
        loglik: [-null_eval.neg_loglik, -final_eval.neg_loglik],
        iterations,
        converged,
    })
}

fn slope_of(step: &[f64], score: &[f64]) -> f64 {
    step.iter().zip(score).map(|(a, b)| a * b).sum()
}

fn prepare(time: &[f64], status: &[u32], cause: u32, covariates: &[crate::cox::Covariate]) -> Prepared {
    let order = order_by_time(time);
    let n = time.len();
    let p = covariates.len();
    let t: Vec<f64> = order.iter().map(|&i| time[i]).collect();
    let code: Vec<u8> = order
        .iter()
        .map(|&i| match status[i] {
            0 => 0,
            c if c == cause => 1,
            _ => 2,
        })
        .collect();
    let mut x = vec![0.0; n * p];
    for (r, &i) in order.iter().enumerate() {
        for (j, c) in covariates.iter().enumerate() {
            x[r * p + j] = c.values[i];
        }
    }
    // KM of the censoring times (censoring is the "event"), evaluated just before each time;
    // at time 0 cmprsk's interpolation picks up the value at 0 itself.
    let mut g_minus = vec![0.0; n];
    let mut surv = 1.0;
    let mut start = 0;
    while start < n {
        let mut end = start;
        let mut censored = 0usize;
        while end < n && t[end] == t[start] {
            if code[end] == 0 {
                censored += 1;
            }
            end += 1;
        }
        let before = surv;
        surv *= 1.0 - censored as f64 / (n - start) as f64;
        let value = if t[start] == 0.0 { surv } else { before };
        g_minus[start..end].iter_mut().for_each(|g| *g = value);
        start = end;
    }
    let mut fail_times = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = start;
        let mut failing = 0;
        while end < n && t[end] == t[start] {
            if code[end] == 1 {
                failing += 1;
            }
            end += 1;
        }
        if failing > 0 {
            fail_times.push((start, failing));
        }
        start = end;
    }
    Prepared { time: t, code, g_minus, x, p, fail_times }
}

/// Weighted risk-set sums at every distinct failure time of the cause:
/// S0 = A0 + G·B0 (A over t ≥ τ, B over earlier competing failures weighted 1/G(t−)).
struct RiskSums {
    s0: Vec<f64>,
    s1: Vec<Vec<f64>>,
    s2: Vec<Matrix>,
}

fn risk_sums(data: &Prepared, beta: &[f64], with_second: bool) -> RiskSums {
    let p = data.p;
    let n = data.time.len();
    let risk: Vec<f64> = (0..n)
        .map(|i| data.x[i * p..(i + 1) * p].iter().zip(beta).map(|(x, b)| x * b).sum::<f64>().exp())
        .collect();
    let m = data.fail_times.len();
    let mut s0 = vec![0.0; m];
    let mut s1 = vec![vec![0.0; p]; m];
    let mut s2 = if with_second { vec![zeros(p); m] } else { Vec::new() };
    // Suffix sums A (t >= tau), walking the failure times from the latest.
    let mut a0 = 0.0;
    let mut a1 = vec![0.0; p];
    let mut a2 = zeros(p);
    let mut next = n;
    for k in (0..m).rev() {
        let first = data.fail_times[k].0;
        for i in first..next {
            let row = &data.x[i * p..(i + 1) * p];
            a0 += risk[i];
            for u in 0..p {
                a1[u] += risk[i] * row[u];
                if with_second {
                    for v in 0..=u {
                        a2[u][v] += risk[i] * row[u] * row[v];
                    }
                }
            }
        }
        next = first;
        s0[k] = a0;
        s1[k].clone_from(&a1);
        if with_second {
            s2[k].clone_from(&a2);
        }
    }
    // Prefix sums B over competing failures before tau.
    let mut b0 = 0.0;
    let mut b1 = vec![0.0; p];
    let mut b2 = zeros(p);
    let mut upto = 0;
    for k in 0..m {
        let first = data.fail_times[k].0;
        for i in upto..first {
            if data.code[i] != 2 {
                continue;
            }
            let w = risk[i] / data.g_minus[i];
            let row = &data.x[i * p..(i + 1) * p];
            b0 += w;
            for u in 0..p {
                b1[u] += w * row[u];
                if with_second {
                    for v in 0..=u {
                        b2[u][v] += w * row[u] * row[v];
                    }
                }
            }
        }
        upto = first;
        let g = data.g_minus[first];
        s0[k] += g * b0;
        for u in 0..p {
            s1[k][u] += g * b1[u];
            if with_second {
                for v in 0..=u {
                    s2[k][u][v] += g * b2[u][v];
                }
            }
        }
    }
    RiskSums { s0, s1, s2 }
}

fn evaluate(data: &Prepared, beta: &[f64], with_derivatives: bool) -> Evaluation {
    let p = data.p;
    let sums = risk_sums(data, beta, with_derivatives);
    let mut neg_loglik = 0.0;
    let mut score = vec![0.0; p];
    let mut hessian = zeros(p);
    for (k, &(first, d)) in data.fail_times.iter().enumerate() {
        let d_f = d as f64;
        for i in first..data.time.len() {
            if data.time[i] != data.time[first] {
                break;
            }
            if data.code[i] == 1 {
                let row = &data.x[i * p..(i + 1) * p];
                neg_loglik -= row.iter().zip(beta).map(|(x, b)| x * b).sum::<f64>();
                for u in 0..p {
                    score[u] -= row[u];
                }
            }
        }
        let s0 = sums.s0[k];
        neg_loglik += d_f * s0.ln();
        if with_derivatives {
            for u in 0..p {
                let mean_u = sums.s1[k][u] / s0;
                score[u] += d_f * mean_u;
                for v in 0..=u {
                    let mean_v = sums.s1[k][v] / s0;
                    hessian[u][v] += d_f * (sums.s2[k][u][v] / s0 - mean_u * mean_v);
                }
            }
        }
    }
    for u in 0..p {
        for v in 0..u {
            hessian[v][u] = hessian[u][v];
        }
    }
    Evaluation { neg_loglik, score, hessian }
}

/// `I⁻¹ V I⁻¹` with `V = Σ ηᵢηᵢ'` (cmprsk's `crrvv`); `None` when the information is singular.
fn sandwich(data: &Prepared, beta: &[f64], information: &Matrix) -> Option<Matrix> {
    let p = data.p;
    let n = data.time.len();
    let sums = risk_sums(data, beta, false);
    let m = data.fail_times.len();
    let xbar: Vec<Vec<f64>> =
        (0..m).map(|k| sums.s1[k].iter().map(|v| v / sums.s0[k]).collect()).collect();
    let fail_g: Vec<f64> = data.fail_times.iter().map(|&(first, _)| data.g_minus[first]).collect();
    let fail_time: Vec<f64> = data.fail_times.iter().map(|&(first, _)| data.time[first]).collect();
    let d: Vec<f64> = data.fail_times.iter().map(|&(_, d)| d as f64).collect();
    // Prefix sums over failure times (tau <= t): P0 = Σ d/S0, P1 = Σ d·x̄/S0.
    let mut p0 = vec![0.0; m + 1];
    let mut p1 = vec![vec![0.0; p]; m + 1];
    // Suffix sums (tau >= t, index k..m): R0 = Σ d·G/S0, R1 = Σ d·G·x̄/S0.
    let mut r0 = vec![0.0; m + 1];
    let mut r1 = vec![vec![0.0; p]; m + 1];
    for k in 0..m {
        p0[k + 1] = p0[k] + d[k] / sums.s0[k];
        for u in 0..p {
            p1[k + 1][u] = p1[k][u] + d[k] * xbar[k][u] / sums.s0[k];
        }
    }
    for k in (0..m).rev() {
        r0[k] = r0[k + 1] + d[k] * fail_g[k] / sums.s0[k];
        for u in 0..p {
            r1[k][u] = r1[k + 1][u] + d[k] * fail_g[k] * xbar[k][u] / sums.s0[k];
        }
    }
    let mut meat = zeros(p);
    // Running sums over competing failures strictly before the current block (C0, C1) and the
    // censoring correction accumulated so far (ss2).
    let mut c0 = 0.0;
    let mut c1 = vec![0.0; p];
    let mut ss2 = vec![0.0; p];
    let mut q = vec![0.0; p];
    let mut eta = vec![0.0; p];
    let mut start = 0;
    while start < n {
        let t = data.time[start];
        let mut end = start;
        let mut censored = 0usize;
        while end < n && data.time[end] == t {
            if data.code[end] == 0 {
                censored += 1;
            }
            end += 1;
        }
        // Failure times <= t: k_le of them; failure times >= t start at k_ge.
        let k_le = fail_time.partition_point(|tau| *tau <= t);
        let k_ge = fail_time.partition_point(|tau| *tau < t);
        if censored > 0 {
            for u in 0..p {
                q[u] = c1[u] * r0[k_ge] - c0 * r1[k_ge][u];
            }
            let at_risk = (n - start) as f64;
            for u in 0..p {
                ss2[u] -= censored as f64 * q[u] / (at_risk * at_risk);
            }
        }
        for i in start..end {
            let row = &data.x[i * p..(i + 1) * p];
            let risk = row.iter().zip(beta).map(|(x, b)| x * b).sum::<f64>().exp();
            for u in 0..p {
                // Score residual: dN part minus the compensator over the times i is at risk.
                let mut value = -risk * (row[u] * p0[k_le] - p1[k_le][u]);
                if data.code[i] == 2 {
                    value -= risk / data.g_minus[i] * (row[u] * r0[k_le] - r1[k_le][u]);
                }
                if data.code[i] == 1 {
                    value += row[u] - xbar[k_le - 1][u];
                }
                value += ss2[u];
                if data.code[i] == 0 {
                    value += q[u] / (n - start) as f64;
                }
                eta[u] = value;
            }
            for u in 0..p {
                for v in 0..p {
                    meat[u][v] += eta[u] * eta[v];
                }
            }
        }
        for i in start..end {
            if data.code[i] == 2 {
                let row = &data.x[i * p..(i + 1) * p];
                let w = row.iter().zip(beta).map(|(x, b)| x * b).sum::<f64>().exp() / data.g_minus[i];
                c0 += w;
                for u in 0..p {
                    c1[u] += w * row[u];
                }
            }
        }
        start = end;
    }
    let h = inverse(information)?;
    let mut tmp = zeros(p);
    for i in 0..p {
        for j in 0..p {
            tmp[i][j] = (0..p).map(|k| h[i][k] * meat[k][j]).sum();
        }
    }
    let mut out = zeros(p);
    for i in 0..p {
        for j in 0..p {
            out[i][j] = (0..p).map(|k| tmp[i][k] * h[j][k]).sum();
        }
    }
    Some(out)
}
