//! From a table of text cells to a statistic in the JSON shape of `registry stats …`
//! (docs/statistics.md). Pure: the caller reads the CSV; this module picks the columns, drops
//! rows with an empty or `NA` cell in a used column (counted as `"dropped"`, R's `na.omit`),
//! parses numbers and event codes with line-numbered errors, groups rows, calls the estimator
//! and renders the result. The CLI and the R-fixture tests share it, so both see the same
//! numbers.
use serde_json::{json, Value};

use crate::cox::{cox_ph, CoxConfig, Covariate, Ties};
use crate::cuminc::cumulative_incidence;
use crate::finegray::{fine_gray, FineGrayConfig};
use crate::groups::group_rows;
use crate::km::{kaplan_meier, ConfType, KmConfig, MedianCi};
use crate::logrank::log_rank;
use crate::tables::{chi_square, cross_tabulate, fisher_exact};
use crate::wilcoxon::rank_sum;
use crate::StatsError;

/// Column names and the text of every cell, row by row (header excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub names: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One `registry stats` subcommand with its column choices.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Km { time: String, event: String, group: Option<String>, conf_type: ConfType, median_ci: MedianCi },
    LogRank { time: String, event: String, group: String },
    Cox { time: String, event: String, covariates: Vec<String>, ties: Ties },
    CumInc { time: String, event: String, group: Option<String> },
    FineGray { time: String, event: String, cause: u32, covariates: Vec<String> },
    ChiSquare { row: String, col: String, correct: bool },
    Fisher { row: String, col: String },
    Wilcoxon { value: String, group: String },
}

/// Runs the request on the frame and returns the JSON document the CLI prints.
pub fn run(frame: &Frame, request: &Request) -> Result<Value, StatsError> {
    match request {
        Request::Km { time, event, group, conf_type, median_ci } => {
            let used = Used::new(frame, &[Some(time), Some(event), group.as_ref()])?;
            let t = used.times(time)?;
            let e = used.binary_events(event)?;
            let cfg = KmConfig { conf_type: *conf_type, median_ci: *median_ci, ..KmConfig::default() };
            let mut groups = Vec::new();
            match group {
                None => groups.push(km_json(Value::Null, &kaplan_meier(&t, &e, &cfg)?)),
                Some(g) => {
                    let grouping = group_rows(&used.text(g)?);
                    for (k, level) in grouping.levels.iter().enumerate() {
                        let rows: Vec<usize> = (0..t.len()).filter(|&i| grouping.index[i] == k).collect();
                        let tk: Vec<f64> = rows.iter().map(|&i| t[i]).collect();
                        let ek: Vec<bool> = rows.iter().map(|&i| e[i]).collect();
                        groups.push(km_json(json!(level), &kaplan_meier(&tk, &ek, &cfg)?));
                    }
                }
            }
            Ok(json!({ "groups": groups, "dropped": used.dropped }))
        }
        Request::LogRank { time, event, group } => {
            let used = Used::new(frame, &[Some(time), Some(event), Some(group)])?;
            let t = used.times(time)?;
            let e = used.binary_events(event)?;
            let grouping = group_rows(&used.text(group)?);
            let lr = log_rank(&t, &e, &grouping.index, grouping.levels.len())?;
            let groups: Vec<Value> = grouping
                .levels
                .iter()
                .enumerate()
                .map(|(k, level)| {
                    json!({ "group": level, "n": lr.n[k], "observed": num(lr.observed[k]),
                            "expected": num(lr.expected[k]) })
                })
                .collect();
            Ok(json!({ "chisq": num(lr.chisq), "df": lr.df, "p": opt(lr.p), "groups": groups,
                       "dropped": used.dropped }))
        }
        Request::Cox { time, event, covariates, ties } => {
            let mut columns: Vec<Option<&String>> = vec![Some(time), Some(event)];
            columns.extend(covariates.iter().map(Some));
            let used = Used::new(frame, &columns)?;
            let t = used.times(time)?;
            let e = used.binary_events(event)?;
            let covs = used.covariates(covariates)?;
            let cfg = CoxConfig { ties: *ties, ..CoxConfig::default() };
            let fit = cox_ph(&t, &e, &covs, &cfg)?;
            let coefficients: Vec<Value> = fit
                .coefficients
                .iter()
                .map(|c| {
                    json!({ "name": c.name, "coef": opt(c.coef), "hr": opt(c.hr), "se": opt(c.se),
                            "z": opt(c.z), "p": opt(c.p), "hr_ci": [opt(c.hr_ci[0]), opt(c.hr_ci[1])],
                            "note": c.note })
                })
                .collect();
            Ok(json!({
                "n": fit.n, "events": fit.events, "coefficients": coefficients,
                "loglik": [num(fit.loglik[0]), num(fit.loglik[1])],
                "lr_chisq": num(fit.lr_chisq), "lr_df": fit.lr_df, "lr_p": num(fit.lr_p),
                "wald_chisq": num(fit.wald_chisq), "wald_p": num(fit.wald_p),
                "score_chisq": num(fit.score_chisq), "score_p": num(fit.score_p),
                "iterations": fit.iterations, "converged": fit.converged,
                "warnings": fit.warnings, "dropped": used.dropped,
            }))
        }
        Request::CumInc { time, event, group } => {
            let used = Used::new(frame, &[Some(time), Some(event), group.as_ref()])?;
            let t = used.times(time)?;
            let codes = used.cause_codes(event)?;
            let (index, levels) = match group {
                Some(g) => {
                    let grouping = group_rows(&used.text(g)?);
                    (grouping.index, grouping.levels.into_iter().map(Value::String).collect())
                }
                None => (vec![0; t.len()], vec![Value::Null]),
            };
            let ci = cumulative_incidence(&t, &codes, &index, levels.len())?;
            let curves: Vec<Value> = ci
                .curves
                .iter()
                .map(|c| {
                    json!({ "group": levels[c.group], "cause": c.cause, "times": nums(&c.times),
                            "cif": nums(&c.cif), "variance": nums(&c.variance) })
                })
                .collect();
            let tests: Vec<Value> = ci
                .gray_tests
                .iter()
                .map(|g| json!({ "cause": g.cause, "stat": opt(g.stat), "df": g.df, "p": opt(g.p) }))
                .collect();
            Ok(json!({ "curves": curves, "gray_test": tests, "dropped": used.dropped }))
        }
        Request::FineGray { time, event, cause, covariates } => {
            let mut columns: Vec<Option<&String>> = vec![Some(time), Some(event)];
            columns.extend(covariates.iter().map(Some));
            let used = Used::new(frame, &columns)?;
            let t = used.times(time)?;
            let codes = used.cause_codes(event)?;
            let covs = used.covariates(covariates)?;
            let fit = fine_gray(&t, &codes, *cause, &covs, &FineGrayConfig::default())?;
            let coefficients: Vec<Value> = fit
                .coefficients
                .iter()
                .map(|c| {
                    json!({ "name": c.name, "coef": num(c.coef), "shr": num(c.shr), "se": num(c.se),
                            "z": num(c.z), "p": num(c.p), "shr_ci": [num(c.shr_ci[0]), num(c.shr_ci[1])] })
                })
                .collect();
            Ok(json!({
                "n": fit.n, "cause": fit.cause, "coefficients": coefficients,
                "converged": fit.converged, "iterations": fit.iterations,
                "loglik": [num(fit.loglik[0]), num(fit.loglik[1])], "dropped": used.dropped,
            }))
        }
        Request::ChiSquare { row, col, correct } => {
            let used = Used::new(frame, &[Some(row), Some(col)])?;
            let table = used.table(row, col)?;
            let r = chi_square(&table, *correct)?;
            Ok(json!({ "statistic": num(r.statistic), "df": r.df, "p": num(r.p), "dropped": used.dropped }))
        }
        Request::Fisher { row, col } => {
            let used = Used::new(frame, &[Some(row), Some(col)])?;
            let table = used.table(row, col)?;
            let r = fisher_exact(&table)?;
            Ok(json!({ "p": num(r.p), "odds_ratio": opt(r.odds_ratio.filter(|v| v.is_finite())),
                       "odds_ratio_infinite": r.odds_ratio.is_some_and(f64::is_infinite),
                       "dropped": used.dropped }))
        }
        Request::Wilcoxon { value, group } => {
            let used = Used::new(frame, &[Some(value), Some(group)])?;
            let values = used.numbers(value)?;
            let grouping = group_rows(&used.text(group)?);
            if grouping.levels.len() != 2 {
                return Err(StatsError::TooFewGroups(format!(
                    "the rank-sum test needs exactly 2 groups in `{group}`, found {}",
                    grouping.levels.len()
                )));
            }
            let first: Vec<f64> =
                (0..values.len()).filter(|&i| grouping.index[i] == 0).map(|i| values[i]).collect();
            let second: Vec<f64> =
                (0..values.len()).filter(|&i| grouping.index[i] == 1).map(|i| values[i]).collect();
            let r = rank_sum(&first, &second)?;
            Ok(json!({ "statistic": num(r.statistic), "p": num(r.p), "exact": r.exact,
                       "groups": grouping.levels, "dropped": used.dropped }))
        }
    }
}

fn km_json(group: Value, c: &crate::km::KmCurve) -> Value {
    json!({
        "group": group, "n": c.n, "events": c.events, "median": opt(c.median),
        "median_ci": [opt(c.median_ci[0]), opt(c.median_ci[1])],
        "times": nums(&c.times), "n_risk": c.n_risk, "n_event": c.n_event, "n_censor": c.n_censor,
        "survival": nums(&c.survival),
        "std_err": c.std_err.iter().map(|v| opt(*v)).collect::<Vec<_>>(),
        "lower": c.lower.iter().map(|v| opt(*v)).collect::<Vec<_>>(),
        "upper": c.upper.iter().map(|v| opt(*v)).collect::<Vec<_>>(),
    })
}

/// A finite number, or null (R's NA / NaN / Inf have no JSON form).
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, num)
}

fn nums(v: &[f64]) -> Vec<Value> {
    v.iter().map(|x| num(*x)).collect()
}

fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty() || c == "NA"
}

/// The rows kept after dropping missing cells in the used columns.
struct Used<'a> {
    frame: &'a Frame,
    rows: Vec<usize>,
    dropped: usize,
}

impl<'a> Used<'a> {
    fn new(frame: &'a Frame, columns: &[Option<&String>]) -> Result<Self, StatsError> {
        let mut indices = Vec::new();
        for name in columns.iter().flatten() {
            indices.push(column_index(frame, name)?);
        }
        let rows: Vec<usize> = (0..frame.rows.len())
            .filter(|&r| indices.iter().all(|&c| frame.rows[r].get(c).is_some_and(|v| !is_missing(v))))
            .collect();
        Ok(Used { frame, dropped: frame.rows.len() - rows.len(), rows })
    }

    fn text(&self, name: &str) -> Result<Vec<String>, StatsError> {
        let c = column_index(self.frame, name)?;
        Ok(self.rows.iter().map(|&r| self.frame.rows[r][c].trim().to_string()).collect())
    }

    fn numbers(&self, name: &str) -> Result<Vec<f64>, StatsError> {
        let c = column_index(self.frame, name)?;
        self.rows
            .iter()
            .map(|&r| {
                let cell = self.frame.rows[r][c].trim();
                cell.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| StatsError::NonNumeric {
                    column: name.to_string(),
                    line: r + 2,
                    value: cell.to_string(),
                })
            })
            .collect()
    }

    fn times(&self, name: &str) -> Result<Vec<f64>, StatsError> {
        let values = self.numbers(name)?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(StatsError::NonNumeric {
                column: name.to_string(),
                line: self.rows[i] + 2,
                value: format!("{v} (times must be >= 0)"),
            });
        }
        Ok(values)
    }

    fn codes(&self, name: &str, allowed: &'static str, ok: impl Fn(f64) -> bool) -> Result<Vec<u32>, StatsError> {
        let c = column_index(self.frame, name)?;
        self.rows
            .iter()
            .map(|&r| {
                let cell = self.frame.rows[r][c].trim();
                match cell.parse::<f64>() {
                    Ok(v) if ok(v) => Ok(v as u32),
                    _ => Err(StatsError::EventCode {
                        column: name.to_string(),
                        line: r + 2,
                        value: cell.to_string(),
                        allowed,
                    }),
                }
            })
            .collect()
    }

    fn binary_events(&self, name: &str) -> Result<Vec<bool>, StatsError> {
        let codes = self.codes(name, "0 (censored) or 1 (event)", |v| v == 0.0 || v == 1.0)?;
        Ok(codes.into_iter().map(|c| c == 1).collect())
    }

    fn cause_codes(&self, name: &str) -> Result<Vec<u32>, StatsError> {
        self.codes(name, "0 (censored) or a cause k = 1, 2, …", |v| {
            v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX)
        })
    }

    fn covariates(&self, names: &[String]) -> Result<Vec<Covariate>, StatsError> {
        names
            .iter()
            .map(|n| Ok(Covariate { name: n.clone(), values: self.numbers(n)? }))
            .collect()
    }

    fn table(&self, row: &str, col: &str) -> Result<crate::tables::Table, StatsError> {
        let r = group_rows(&self.text(row)?);
        let c = group_rows(&self.text(col)?);
        Ok(cross_tabulate(&r.index, &c.index, r.levels.len(), c.levels.len()))
    }
}

fn column_index(frame: &Frame, name: &str) -> Result<usize, StatsError> {
    frame.names.iter().position(|n| n == name).ok_or_else(|| StatsError::UnknownColumn {
        name: name.to_string(),
        available: frame.names.join(", "),
    })
}
