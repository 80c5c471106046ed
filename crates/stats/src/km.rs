//! Kaplan–Meier estimate as R's `survfit(Surv(time, status) ~ 1)` (survival 3.5):
//! Greenwood variance, pointwise CIs (`conf.type` log / log-log / plain), the standard error of
//! S as `summary.survfit` prints it, and the median with two kinds of CI.
//!
//! The median and its `band` CI follow `quantile.survfit`: the quantile is where a horizontal
//! line at 0.5 meets the curve; when the curve is flat at exactly 0.5 (within √ε) the midpoint of
//! the flat is taken (and for a flat at the very end, the midpoint to the last follow-up time).
//! The CI is where the lower and upper pointwise bands cross 0.5. The `symmetric` CI is the
//! SPSS-style `median ± z·SE`, see [`MedianCi::Symmetric`] and docs/statistics.md.
use crate::{check_times, order_by_time, z_for_level, StatsError};

/// Transformation used for the pointwise confidence band (`survfit(conf.type = …)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfType {
    /// `exp(log S ± z·se)`, upper capped at 1 (R's default).
    #[default]
    Log,
    /// `exp(-exp(log(-log S) ± z·se/log S))`.
    LogLog,
    /// `S ± z·se·S`, clipped to [0, 1].
    Plain,
}

/// Which confidence interval to report for the median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MedianCi {
    /// Where the pointwise band crosses 0.5, as R's `print.survfit` / `quantile.survfit`.
    #[default]
    Band,
    /// `median ± z·SE(median)` with `SE(median) = SE(S(median)) / f̂`, where `SE(S(median))` is the
    /// Greenwood standard error of S at the median (as `summary.survfit`) and
    /// `f̂ = (0.55 − 0.45) / (t₀.₅₅ − t₀.₄₅)` is the density estimated from the 45th and 55th
    /// percentiles of the survival time (R's `quantile(fit, c(.45, .55))`).
    Symmetric,
}

/// Options of [`kaplan_meier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KmConfig {
    pub conf_type: ConfType,
    pub conf_level: f64,
    pub median_ci: MedianCi,
}

impl Default for KmConfig {
    fn default() -> Self {
        KmConfig { conf_type: ConfType::Log, conf_level: 0.95, median_ci: MedianCi::Band }
    }
}

/// One Kaplan–Meier curve at every distinct observed time (events and censorings), as
/// `survfit`'s `time`, `n.risk`, `n.event`, `n.censor`, `surv`, `lower`, `upper`.
#[derive(Debug, Clone, PartialEq)]
pub struct KmCurve {
    pub n: usize,
    pub events: usize,
    pub times: Vec<f64>,
    pub n_risk: Vec<usize>,
    pub n_event: Vec<usize>,
    pub n_censor: Vec<usize>,
    pub survival: Vec<f64>,
    /// Standard error of S (`summary.survfit`'s `std.err`): `S · sqrt(Σ d/(n(n−d)))`.
    /// `None` where undefined (S = 0 after everyone at risk died).
    pub std_err: Vec<Option<f64>>,
    pub lower: Vec<Option<f64>>,
    pub upper: Vec<Option<f64>>,
    /// `None` when the curve never reaches 0.5.
    pub median: Option<f64>,
    pub median_ci: [Option<f64>; 2],
}

/// √ε, `quantile.survfit`'s default tolerance for "the curve is flat at p".
const QUANTILE_TOL: f64 = 1.490_116_119_384_765_6e-8;

/// Kaplan–Meier with Greenwood variance. `event[i]` is true for an event, false for censoring.
pub fn kaplan_meier(time: &[f64], event: &[bool], cfg: &KmConfig) -> Result<KmCurve, StatsError> {
    check_times(time, event.len())?;
    let order = order_by_time(time);
    let n = time.len();
    let mut times = Vec::new();
    let mut n_risk = Vec::new();
    let mut n_event = Vec::new();
    let mut n_censor = Vec::new();
    let mut survival = Vec::new();
    let mut cumhaz_se = Vec::new(); // survfit's std.err: se of -log S
    let mut surv = 1.0f64;
    let mut greenwood = 0.0f64;
    let mut at_risk = n;
    let mut pos = 0;
    while pos < n {
        let t = time[order[pos]];
        let mut d = 0usize;
        let mut c = 0usize;
        let mut end = pos;
        while end < n && time[order[end]] == t {
            if event[order[end]] {
                d += 1;
            } else {
                c += 1;
            }
            end += 1;
        }
        if d > 0 {
            surv *= 1.0 - d as f64 / at_risk as f64;
            // Greenwood term d/(n(n-d)); infinite when everyone at risk dies, as in survfit.
            greenwood += d as f64 / (at_risk as f64 * (at_risk - d) as f64);
        }
        times.push(t);
        n_risk.push(at_risk);
        n_event.push(d);
        n_censor.push(c);
        survival.push(surv);
        cumhaz_se.push(greenwood.sqrt());
        at_risk -= d + c;
        pos = end;
    }
    let z = z_for_level(cfg.conf_level);
    let mut lower = Vec::with_capacity(times.len());
    let mut upper = Vec::with_capacity(times.len());
    for (&s, &se) in survival.iter().zip(&cumhaz_se) {
        let (lo, hi) = pointwise_ci(s, se, z, cfg.conf_type);
        lower.push(finite(lo));
        upper.push(finite(hi));
    }
    let std_err: Vec<Option<f64>> =
        survival.iter().zip(&cumhaz_se).map(|(s, se)| finite(s * se)).collect();

    let x_curve: Vec<f64> = std::iter::once(0.0).chain(times.iter().copied()).collect();
    let to_cdf = |v: &[Option<f64>]| -> Vec<Option<f64>> {
        std::iter::once(Some(0.0)).chain(v.iter().map(|s| s.map(|s| 1.0 - s))).collect()
    };
    let surv_opt: Vec<Option<f64>> = survival.iter().map(|s| Some(*s)).collect();
    let cdf = to_cdf(&surv_opt);
    let median = find_quantile(&x_curve, &cdf, 0.5, QUANTILE_TOL);
    let median_ci = match cfg.median_ci {
        MedianCi::Band => [
            find_quantile(&x_curve, &to_cdf(&lower), 0.5, QUANTILE_TOL),
            find_quantile(&x_curve, &to_cdf(&upper), 0.5, QUANTILE_TOL),
        ],
        MedianCi::Symmetric => symmetric_median_ci(median, &x_curve, &cdf, &times, &std_err, z),
    };
    let events = n_event.iter().sum();
    Ok(KmCurve {
        n,
        events,
        times,
        n_risk,
        n_event,
        n_censor,
        survival,
        std_err,
        lower,
        upper,
        median,
        median_ci,
    })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `survfit_confint` with `logse = TRUE`: `se` is the standard error of −log S.
fn pointwise_ci(s: f64, se: f64, z: f64, conf_type: ConfType) -> (f64, f64) {
    match conf_type {
        ConfType::Plain => {
            let half = se * s * z;
            if half.is_nan() {
                // S = 0 with infinite se: R's pmax/pmin keep the NaN.
                return (f64::NAN, f64::NAN);
            }
            ((s - half).max(0.0), (s + half).min(1.0))
        }
        ConfType::Log => {
            if s == 0.0 {
                return (f64::NAN, f64::NAN);
            }
            let half = z * se;
            ((s.ln() - half).exp(), (s.ln() + half).exp().min(1.0))
        }
        ConfType::LogLog => {
            if s == 0.0 || s == 1.0 {
                return (f64::NAN, f64::NAN);
            }
            let half = z * se / s.ln();
            let center = (-s.ln()).ln();
            ((-(center - half).exp()).exp(), (-(center + half).exp()).exp())
        }
    }
}

/// R's `approx(x, y, v, method = "constant", f = 1, rule = 1)` on points sorted by `x`
/// (distinct): the y of the first x ≥ v, `None` outside [x₀, xₙ].
fn approx_constant_right(points: &[(f64, usize)], v: f64) -> Option<usize> {
    let first = points.first()?;
    let last = points.last()?;
    if v < first.0 || v > last.0 {
        return None;
    }
    let j = points.partition_point(|p| p.0 < v);
    points.get(j).map(|p| p.1)
}

/// `findq` of survival's quantile.survfit: the time where the CDF curve `y` (with `x` the times,
/// starting at the origin) reaches `p`, taking the midpoint of a flat segment at exactly `p`.
pub(crate) fn find_quantile(x: &[f64], y: &[Option<f64>], p: f64, tol: f64) -> Option<f64> {
    let max_y = y.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    // Negated on purpose: no value (max_y = -inf) or a NaN p gives no quantile.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(max_y >= p) {
        return None;
    }
    let xmax = *x.last()?;
    // Drop duplicated y values (censorings), keeping the first: R's duplicated() treats
    // NA as a value too.
    let mut xs = Vec::with_capacity(x.len());
    let mut ys: Vec<Option<f64>> = Vec::with_capacity(y.len());
    let mut seen_na = false;
    let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for (xi, yi) in x.iter().zip(y) {
        let fresh = match yi {
            None => !std::mem::replace(&mut seen_na, true),
            Some(v) => seen.insert(if *v == 0.0 { 0.0f64.to_bits() } else { v.to_bits() }),
        };
        if fresh {
            xs.push(*xi);
            ys.push(*yi);
        }
    }
    let make_points = |shift: f64| -> Vec<(f64, usize)> {
        let mut pts: Vec<(f64, usize)> =
            ys.iter().enumerate().filter_map(|(i, v)| v.map(|v| (v + shift, i))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts
    };
    let index1 = approx_constant_right(&make_points(tol), p);
    let index2 = approx_constant_right(&make_points(-tol), p);
    let mut quant = match (index1, index2) {
        (Some(i), Some(j)) => Some((xs[i] + xs[j]) / 2.0),
        _ => None,
    };
    if let Some(Some(y_last)) = ys.last() {
        if (p - y_last).abs() < tol {
            quant = index1.map(|i| (xs[i] + xmax) / 2.0);
        }
    }
    quant
}

/// The SPSS-style interval documented on [`MedianCi::Symmetric`].
fn symmetric_median_ci(
    median: Option<f64>,
    x_curve: &[f64],
    cdf: &[Option<f64>],
    times: &[f64],
    std_err: &[Option<f64>],
    z: f64,
) -> [Option<f64>; 2] {
    let Some(m) = median else { return [None, None] };
    let t45 = find_quantile(x_curve, cdf, 0.45, QUANTILE_TOL);
    let t55 = find_quantile(x_curve, cdf, 0.55, QUANTILE_TOL);
    let (Some(t45), Some(t55)) = (t45, t55) else { return [None, None] };
    if t55 <= t45 {
        return [None, None];
    }
    let density = (0.55 - 0.45) / (t55 - t45);
    // Greenwood SE of S at the median: the step function at the last time <= median.
    let idx = times.partition_point(|t| *t <= m);
    let se_s = if idx == 0 { Some(0.0) } else { std_err[idx - 1] };
    let Some(se_s) = se_s else { return [None, None] };
    let se_median = se_s / density;
    [Some(m - z * se_median), Some(m + z * se_median)]
}
