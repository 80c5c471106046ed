//! Data-quality findings: plausible-but-suspicious facts that the registry keeps and flags
//! (`domain.md`, "Alerts" → `data_quality`). A finding never changes how a label is computed beyond
//! what the rule that raised it says.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What looks wrong. Serialised in snake_case (`scan_after_death`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An imaging study dated after the (counted) death.
    ScanAfterDeath,
    /// An imaging study dated before the diagnosis date.
    ScanBeforeDiagnosis,
    /// The reader's `reported_response` differs from the computed time-point response.
    ReportedResponseMismatch,
    /// A second `patient.enrolled` that is not a correction; the first counts.
    SecondEnrolment,
    /// More than one death; the earliest counts.
    SeveralDeaths,
    /// A death dated before a clock's start (the clock keeps negative days).
    DeathBeforeClockStart,
    /// A retraction or correction naming another patient's event; the link is ignored.
    CrossPatientLink,
    /// Any other unusable link (a correction of an event of another type, a link to itself, links
    /// forming a cycle); the link is ignored.
    InvalidLink,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ScanAfterDeath => "scan_after_death",
            FindingKind::ScanBeforeDiagnosis => "scan_before_diagnosis",
            FindingKind::ReportedResponseMismatch => "reported_response_mismatch",
            FindingKind::SecondEnrolment => "second_enrolment",
            FindingKind::SeveralDeaths => "several_deaths",
            FindingKind::DeathBeforeClockStart => "death_before_clock_start",
            FindingKind::CrossPatientLink => "cross_patient_link",
            FindingKind::InvalidLink => "invalid_link",
        }
    }
}

/// One data-quality finding: its kind, the event it is about, and a human-readable message.
/// Findings of a projection are sorted by (kind, event_id, message) and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub event_id: Uuid,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(kind: FindingKind, event_id: Uuid, message: impl Into<String>) -> Finding {
        Finding { kind, event_id, message: message.into() }
    }
}

/// Sorts and deduplicates findings into their deterministic order.
pub(crate) fn normalise(findings: &mut Vec<Finding>) {
    findings.sort();
    findings.dedup();
}
