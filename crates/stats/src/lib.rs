//! registry-stats: pure survival and competing-risk statistics whose numbers agree with R's
//! `survival` (3.5) and `cmprsk` (2.2) packages and with base R's `stats` tests.
//!
//! Architecture invariant: this crate does no IO. Callers hand in plain slices (times, event
//! codes, group indices, covariate columns) and get plain result structs back; the JSON wire
//! shape lives in the CLI. Every routine documents which R function it reproduces, and the tests
//! compare against fixtures written by `scripts/r/make_stats_fixtures.R`.
//!
//! Code map:
//! - [`km`]: Kaplan–Meier (`survfit`), Greenwood variance, CI types, median and its CIs.
//! - [`logrank`]: k-sample log-rank test (`survdiff`).
//! - [`cox`]: Cox proportional hazards (`coxph`), Efron and Breslow ties.
//! - [`cuminc`]: Aalen–Johansen cumulative incidence, Gray's variance and k-sample test (`cmprsk::cuminc`).
//! - [`finegray`]: Fine–Gray subdistribution hazards regression (`cmprsk::crr`).
//! - [`tables`]: chi-square (`chisq.test`) and Fisher's exact test (`fisher.test`).
//! - [`wilcoxon`]: Wilcoxon rank-sum test (`wilcox.test`).
//! - [`request`]: columns of text cells → the JSON of `registry stats …` (shared by CLI and tests).
//! - [`groups`]: sorting group labels the way the CLI and the fixtures agree on.

// The numerical routines follow their R / Fortran sources loop for loop (indices into several
// parallel arrays at once, as `cmprsk`'s crstm and `survival`'s agfit do); iterator rewrites
// would make them harder to check against those sources.
#![allow(clippy::needless_range_loop)]

pub mod cox;
pub mod cuminc;
mod error;
pub mod finegray;
pub mod groups;
pub mod km;
mod linalg;
pub mod request;
pub mod logrank;
pub mod tables;
pub mod wilcoxon;
mod zeroin;

pub use error::StatsError;

/// Two-sided standard-normal quantile for a confidence level (0.95 → 1.959964…), as `qnorm`.
pub(crate) fn z_for_level(level: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    // Normal::standard() cannot fail; inverse_cdf is accurate to ~1e-15.
    Normal::standard().inverse_cdf(1.0 - (1.0 - level) / 2.0)
}

/// Upper tail of the chi-square distribution, `pchisq(x, df, lower.tail = FALSE)`.
pub(crate) fn chisq_upper(x: f64, df: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    if !x.is_finite() || df <= 0.0 {
        return f64::NAN;
    }
    match ChiSquared::new(df) {
        Ok(dist) => dist.sf(x),
        Err(_) => f64::NAN,
    }
}

/// Two-sided normal p-value `2 * pnorm(-|z|)`.
pub(crate) fn normal_two_sided(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    2.0 * Normal::standard().cdf(-z.abs())
}

/// Checks the shared preconditions of survival input: equal lengths, at least one row, finite
/// non-negative times.
pub(crate) fn check_times(time: &[f64], other_len: usize) -> Result<(), StatsError> {
    if time.len() != other_len {
        return Err(StatsError::LengthMismatch { expected: time.len(), found: other_len });
    }
    if time.is_empty() {
        return Err(StatsError::Empty);
    }
    if let Some(bad) = time.iter().find(|t| !t.is_finite() || **t < 0.0) {
        return Err(StatsError::InvalidTime(*bad));
    }
    Ok(())
}

/// Indices of `time` sorted ascending (stable, so input order breaks ties).
pub(crate) fn order_by_time(time: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..time.len()).collect();
    idx.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
    idx
}
