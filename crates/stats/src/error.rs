//! The one error type of the crate: precondition failures on the input, never numerical noise
//! (undefined numbers are `None`/`NaN` in results, as R's `NA`).
use thiserror::Error;

/// Why a statistic could not be computed at all.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StatsError {
    /// Parallel input columns have different lengths.
    #[error("input columns differ in length: {expected} vs {found}")]
    LengthMismatch { expected: usize, found: usize },
    /// No rows to work with.
    #[error("no observations")]
    Empty,
    /// A time that is negative, NaN or infinite.
    #[error("invalid time {0}: times must be finite and >= 0")]
    InvalidTime(f64),
    /// A covariate or value that is NaN or infinite.
    #[error("non-finite value in column {0}")]
    NonFinite(String),
    /// The test needs more groups (or levels) than the data have.
    #[error("{0}")]
    TooFewGroups(String),
    /// An argument outside its domain (cause not present, bad table, …).
    #[error("{0}")]
    InvalidArgument(String),
    /// A column named on the command line is not in the data.
    #[error("unknown column `{name}` (columns: {available})")]
    UnknownColumn { name: String, available: String },
    /// A cell that must be a number is not (line counts the header as line 1).
    #[error("column `{column}`, line {line}: `{value}` is not a number")]
    NonNumeric { column: String, line: usize, value: String },
    /// An event code outside the coding (0/1, or 0..k for competing risks).
    #[error("column `{column}`, line {line}: event code `{value}` is not {allowed}")]
    EventCode { column: String, line: usize, value: String, allowed: &'static str },
}
