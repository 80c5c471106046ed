//! Cox proportional hazards regression as R's `coxph(Surv(time, status) ~ x1 + …)`
//! (survival 3.5, `coxph.fit` / C `coxfit6`).
//!
//! Same algorithm, so the same numbers and the same iteration count: covariates are centred and
//! scaled (columns whose values all lie in {−1, 0, 1} are left alone, R's `nocenter`), Newton–
//! Raphson from β = 0, convergence when `|1 − loglik_old/loglik_new| ≤ eps` (1e-9, at most 20
//! iterations), step-halving towards the last good β whenever the log-likelihood decreases.
//! Ties by Efron (default) or Breslow. A column whose Cholesky pivot falls below
//! `toler.chol = ε^0.75` times the largest diagonal is redundant: R returns `NA` for it, we
//! return `coef: None` with a note. After convergence R's test for a diverging coefficient
//! (`|U·V| > eps` and `> sqrt(eps)·|β|`) produces R's warning text as a note; the numbers are
//! kept as R prints them.
use crate::linalg::{chinv2, chsolve2, cholesky2, quadratic_form_ginv, zeros, Matrix};
use crate::{check_times, chisq_upper, normal_two_sided, order_by_time, z_for_level, StatsError};

/// How tied event times enter the partial likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ties {
    #[default]
    Efron,
    Breslow,
}

/// Controls, with R's `coxph.control()` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoxConfig {
    pub ties: Ties,
    pub eps: f64,
    pub iter_max: usize,
    pub toler_chol: f64,
    pub toler_inf: f64,
    pub conf_level: f64,
}

impl Default for CoxConfig {
    fn default() -> Self {
        let eps = 1e-9;
        CoxConfig {
            ties: Ties::Efron,
            eps,
            iter_max: 20,
            toler_chol: f64::EPSILON.powf(0.75),
            toler_inf: eps.sqrt(),
            conf_level: 0.95,
        }
    }
}

/// A named covariate column.
#[derive(Debug, Clone, PartialEq)]
pub struct Covariate {
    pub name: String,
    pub values: Vec<f64>,
}

/// One row of the coefficient table. All numbers are `None` for a redundant (collinear) column.
#[derive(Debug, Clone, PartialEq)]
pub struct CoxCoefficient {
    pub name: String,
    pub coef: Option<f64>,
    pub hr: Option<f64>,
    pub se: Option<f64>,
    pub z: Option<f64>,
    pub p: Option<f64>,
    pub hr_ci: [Option<f64>; 2],
    /// Why the row is special (collinear, possibly infinite), in R's words.
    pub note: Option<String>,
}

/// The fitted model, as `summary(coxph(...))` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CoxFit {
    pub n: usize,
    pub events: usize,
    pub coefficients: Vec<CoxCoefficient>,
    /// Log partial likelihood at β = 0 and at the estimate.
    pub loglik: [f64; 2],
    pub lr_chisq: f64,
    pub lr_df: usize,
    pub lr_p: f64,
    pub wald_chisq: f64,
    pub wald_p: f64,
    pub score_chisq: f64,
    pub score_p: f64,
    pub iterations: usize,
    pub converged: bool,
    /// R's warnings for this fit, verbatim.
    pub warnings: Vec<String>,
}

/// Data sorted by time with covariates centred/scaled, row-major.
struct Prepared {
    time: Vec<f64>,
    event: Vec<bool>,
    x: Vec<f64>,
    nvar: usize,
}

/// Score vector, information matrix (upper triangle filled) and log-likelihood at β.
struct Evaluation {
    loglik: f64,
    u: Vec<f64>,
    imat: Matrix,
}

/// Fits the model. `event[i]` is true for an event.
pub fn cox_ph(
    time: &[f64],
    event: &[bool],
    covariates: &[Covariate],
    cfg: &CoxConfig,
) -> Result<CoxFit, StatsError> {
    check_times(time, event.len())?;
    if covariates.is_empty() {
        return Err(StatsError::InvalidArgument("the Cox model needs at least one covariate".into()));
    }
    for c in covariates {
        check_times(time, c.values.len())?;
        if c.values.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::NonFinite(c.name.clone()));
        }
    }
    let n = time.len();
    let nvar = covariates.len();
    let order = order_by_time(time);
    let mut scale = vec![1.0; nvar];
    let mut x = vec![0.0; n * nvar];
    for (j, c) in covariates.iter().enumerate() {
        let zero_one = c.values.iter().all(|v| *v == -1.0 || *v == 0.0 || *v == 1.0);
        let mut col: Vec<f64> = order.iter().map(|&i| c.values[i]).collect();
        if !zero_one {
            let mean = col.iter().sum::<f64>() / n as f64;
            col.iter_mut().for_each(|v| *v -= mean);
            let abs_sum: f64 = col.iter().map(|v| v.abs()).sum();
            let s = if abs_sum > 0.0 { n as f64 / abs_sum } else { 1.0 };
            scale[j] = s;
            col.iter_mut().for_each(|v| *v *= s);
        }
        for (r, v) in col.into_iter().enumerate() {
            x[r * nvar + j] = v;
        }
    }
    let data = Prepared {
        time: order.iter().map(|&i| time[i]).collect(),
        event: order.iter().map(|&i| event[i]).collect(),
        x,
        nvar,
    };
    let events = data.event.iter().filter(|e| **e).count();

    // Initial step at beta = 0: null log-likelihood and the score test.
    let mut beta = vec![0.0; nvar];
    let first = evaluate(&data, &beta, cfg.ties);
    let loglik0 = first.loglik;
    let mut imat = first.imat;
    let mut flag = cholesky2(&mut imat, cfg.toler_chol);
    let mut step = first.u.clone();
    chsolve2(&imat, &mut step);
    let score_chisq: f64 = first.u.iter().zip(&step).map(|(a, b)| a * b).sum();

    let mut best_loglik = loglik0;
    let mut newbeta: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
    let mut halving = 0usize;
    let mut converged = false;
    let mut iterations = 0;
    let mut u_final = first.u;
    let mut final_factor = imat;
    let mut final_beta = beta.clone();
    let mut loglik1 = loglik0;
    if loglik0.is_finite() {
        for iter in 1..=cfg.iter_max {
            iterations = iter;
            let ev = evaluate(&data, &newbeta, cfg.ties);
            let mut factor = ev.imat;
            flag = cholesky2(&mut factor, cfg.toler_chol);
            let notfinite = ev.u.iter().any(|v| !v.is_finite())
                || factor.iter().flatten().any(|v| !v.is_finite())
                || !ev.loglik.is_finite();
            if !notfinite && (1.0 - best_loglik / ev.loglik).abs() <= cfg.eps {
                loglik1 = ev.loglik;
                final_beta = newbeta.clone();
                u_final = ev.u;
                final_factor = factor;
                converged = true;
                if halving > 0 {
                    flag = -2;
                }
                break;
            }
            if iter == cfg.iter_max {
                break;
            }
            if notfinite || ev.loglik < best_loglik {
                // Not improving: move back towards the last good beta, harder each time.
                halving += 1;
                let h = halving as f64;
                for (nb, b) in newbeta.iter_mut().zip(&beta) {
                    *nb = (*nb + h * b) / (h + 1.0);
                }
            } else {
                halving = 0;
                best_loglik = ev.loglik;
                let mut delta = ev.u;
                chsolve2(&factor, &mut delta);
                beta.clone_from(&newbeta);
                for (nb, d) in newbeta.iter_mut().zip(&delta) {
                    *nb += d;
                }
            }
        }
    }
    let mut warnings = Vec::new();
    if !converged {
        // Out of iterations: report the last good beta and its information, as R does.
        // (R re-evaluates at beta; we also factor before inverting, see docs/statistics.md.)
        let ev = evaluate(&data, &beta, cfg.ties);
        loglik1 = ev.loglik;
        u_final = ev.u;
        let mut factor = ev.imat;
        flag = cholesky2(&mut factor, cfg.toler_chol);
        final_factor = factor;
        final_beta = beta.clone();
        warnings.push("Ran out of iterations and did not converge".to_string());
    }
    let scaled_var = chinv2(&mut final_factor);
    // Back to the original scale of the covariates.
    let coef: Vec<f64> = final_beta.iter().zip(&scale).map(|(b, s)| b * s).collect();
    let u: Vec<f64> = u_final.iter().zip(&scale).map(|(v, s)| v / s).collect();
    let mut var = zeros(nvar);
    for i in 0..nvar {
        for j in 0..nvar {
            var[i][j] = scaled_var[i][j] * scale[i] * scale[j];
        }
    }
    let singular: Vec<bool> =
        (0..nvar).map(|j| flag < nvar as i64 && var[j][j] == 0.0).collect();
    let mut infinite = vec![false; nvar];
    if converged && cfg.iter_max > 1 {
        for j in 0..nvar {
            let uv: f64 = (0..nvar).map(|i| u[i] * var[i][j]).sum::<f64>().abs();
            infinite[j] =
                !u[j].is_finite() || (uv > cfg.eps && uv > cfg.toler_inf * coef[j].abs());
        }
        if infinite.iter().any(|b| *b) {
            let list: Vec<String> =
                (0..nvar).filter(|&j| infinite[j]).map(|j| (j + 1).to_string()).collect();
            warnings.push(format!(
                "Loglik converged before variable  {} ; coefficient may be infinite. ",
                list.join(",")
            ));
        }
    }
    let z_crit = z_for_level(cfg.conf_level);
    let mut coefficients = Vec::with_capacity(nvar);
    for j in 0..nvar {
        let name = covariates[j].name.clone();
        if singular[j] {
            coefficients.push(CoxCoefficient {
                name,
                coef: None,
                hr: None,
                se: None,
                z: None,
                p: None,
                hr_ci: [None, None],
                note: Some("collinear with other covariates: coefficient not estimable (NA in R)".into()),
            });
            continue;
        }
        let b = coef[j];
        let se = var[j][j].sqrt();
        let z = b / se;
        coefficients.push(CoxCoefficient {
            name,
            coef: Some(b),
            hr: Some(b.exp()),
            se: Some(se),
            z: Some(z),
            p: Some(normal_two_sided(z)),
            hr_ci: [Some((b - z_crit * se).exp()), Some((b + z_crit * se).exp())],
            note: infinite[j].then(|| {
                format!("Loglik converged before variable {}; coefficient may be infinite", j + 1)
            }),
        });
    }
    let kept: Vec<usize> = (0..nvar).filter(|&j| !singular[j]).collect();
    let df = kept.len();
    let kept_var: Matrix = kept.iter().map(|&i| kept.iter().map(|&j| var[i][j]).collect()).collect();
    let kept_coef: Vec<f64> = kept.iter().map(|&j| coef[j]).collect();
    let wald_chisq = quadratic_form_ginv(&kept_var, &kept_coef, cfg.toler_chol).0;
    let lr_chisq = 2.0 * (loglik1 - loglik0);
    Ok(CoxFit {
        n,
        events,
        coefficients,
        loglik: [loglik0, loglik1],
        lr_chisq,
        lr_df: df,
        lr_p: chisq_upper(lr_chisq, df as f64),
        wald_chisq,
        wald_p: chisq_upper(wald_chisq, df as f64),
        score_chisq,
        score_p: chisq_upper(score_chisq, df as f64),
        iterations,
        converged,
        warnings,
    })
}

/// One pass over the risk sets from the latest time backwards (coxfit6_iter).
fn evaluate(data: &Prepared, beta: &[f64], ties: Ties) -> Evaluation {
    let nvar = data.nvar;
    let n = data.time.len();
    let mut loglik = 0.0;
    let mut u = vec![0.0; nvar];
    let mut imat = zeros(nvar);
    let mut denom = 0.0;
    let mut a = vec![0.0; nvar];
    let mut cmat = zeros(nvar);
    let mut a2 = vec![0.0; nvar];
    let mut cmat2 = zeros(nvar);
    let mut person = n;
    while person > 0 {
        let dtime = data.time[person - 1];
        let mut ndead = 0usize;
        let mut denom2 = 0.0;
        while person > 0 && data.time[person - 1] == dtime {
            person -= 1;
            let row = &data.x[person * nvar..(person + 1) * nvar];
            let zbeta: f64 = row.iter().zip(beta).map(|(x, b)| x * b).sum();
            let risk = zbeta.exp();
            if data.event[person] {
                ndead += 1;
                denom2 += risk;
                loglik += zbeta;
                for i in 0..nvar {
                    u[i] += row[i];
                    a2[i] += risk * row[i];
                    for j in 0..=i {
                        cmat2[i][j] += risk * row[i] * row[j];
                    }
                }
            } else {
                denom += risk;
                for i in 0..nvar {
                    a[i] += risk * row[i];
                    for j in 0..=i {
                        cmat[i][j] += risk * row[i] * row[j];
                    }
                }
            }
        }
        if ndead == 0 {
            continue;
        }
        if ties == Ties::Breslow || ndead == 1 {
            denom += denom2;
            let deadwt = ndead as f64;
            loglik -= deadwt * denom.ln();
            for i in 0..nvar {
                a[i] += a2[i];
                let mean = a[i] / denom;
                u[i] -= deadwt * mean;
                for j in 0..=i {
                    cmat[i][j] += cmat2[i][j];
                    imat[j][i] += deadwt * (cmat[i][j] - mean * a[j]) / denom;
                }
            }
        } else {
            // Efron: the k-th of d tied deaths sees the dead's risk at weight (d-k)/d.
            let d = ndead as f64;
            for _ in 0..ndead {
                denom += denom2 / d;
                loglik -= denom.ln();
                for i in 0..nvar {
                    a[i] += a2[i] / d;
                    let mean = a[i] / denom;
                    u[i] -= mean;
                    for j in 0..=i {
                        cmat[i][j] += cmat2[i][j] / d;
                        imat[j][i] += (cmat[i][j] - mean * a[j]) / denom;
                    }
                }
            }
        }
        a2.iter_mut().for_each(|v| *v = 0.0);
        cmat2.iter_mut().flatten().for_each(|v| *v = 0.0);
    }
    Evaluation { loglik, u, imat }
}
