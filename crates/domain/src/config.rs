//! Thresholds of the clinical rules that a deployment may change (every `(cfg)` of `domain.md`).
//!
//! The defaults are the spec's; tests use them. Fixed RECIST / study constants that the spec does
//! not mark `(cfg)` (20 %, 5 mm, 30 %, 10 / 15 mm, oligo ≤ 3 lesions < 30 mm) live in
//! [`crate::recist`] as named constants.

use serde::{Deserialize, Serialize};

/// Every `(cfg)` threshold of `domain.md`, with the spec's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Baseline window: imaging in [T0 − this, T0]. Default 42.
    pub baseline_window_days: i64,
    /// A time point takes every study at most this many days after its first. Default 7.
    pub timepoint_window_days: i64,
    /// An SD (or non-CR/non-PD) earlier than this after T0 does not count for BOR. Default 42.
    pub sd_min_days: i64,
    /// Crizotinib beyond progression: still on crizotinib this many days after PD1. Default 21.
    pub cbpd_days: i64,
    /// SBRT salvage candidate: at most this many progressing extracranial lesions. Default 4.
    pub sbrt_max_lesions: usize,
    /// SBRT salvage candidate: each progressing extracranial lesion at most this size. Default 50 mm.
    pub sbrt_max_diameter_mm: f64,
    /// Expected interval between assessments. Default 56 days.
    pub followup_interval_days: i64,
    /// Grace period after the expected interval before `followup_overdue`. Default 14 days.
    pub followup_grace_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            baseline_window_days: 42,
            timepoint_window_days: 7,
            sd_min_days: 42,
            cbpd_days: 21,
            sbrt_max_lesions: 4,
            sbrt_max_diameter_mm: 50.0,
            followup_interval_days: 56,
            followup_grace_days: 14,
        }
    }
}

impl Config {
    /// Days after the last assessment beyond which follow-up is overdue (56 + 14 by default).
    pub fn followup_overdue_days(&self) -> i64 {
        self.followup_interval_days + self.followup_grace_days
    }
}
