//! What the report reads of each patient: the labels JSON (`interfaces.md`, "Labels") and the
//! enrolment facts, turned into one flat [`Subject`] per patient.
//!
//! The labels are read from their JSON form through a lenient private shape that names only the
//! fields the report uses: a field added to the labels later does not break the report, a
//! missing one reads as null.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use registry_domain::events::{Enrollment, Histology, NStage, Organ, Sex, TStage};
use registry_domain::projection::PatientProjection;
use serde::{Deserialize, Serialize};

/// One patient as handed to [`crate::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatientInput {
    /// The patient's labels as `registry labels` prints them (`serde_json::to_value(&labels)`).
    pub labels: serde_json::Value,
    /// The `patient.enrolled` that counts in the view (the first in canonical order, the one the
    /// labels were computed from); `None` when the patient has none (status `incomplete`).
    pub enrollment: Option<Enrollment>,
    /// Organs of the baseline's metastatic lesions (the organs behind
    /// `baseline.metastatic_organs`); `None` without a baseline.
    pub baseline_metastatic_sites: Option<Vec<Organ>>,
}

impl PatientInput {
    /// What the report reads of a patient's projection in the view: the labels, the enrolment that
    /// counts and the baseline's metastatic organs. `registry report` and `GET /cohort/report`
    /// both build their input here.
    pub fn from_projection(p: &PatientProjection) -> PatientInput {
        PatientInput {
            // Plain structs, strings, dates and finite numbers: serialisation cannot fail.
            labels: serde_json::to_value(&p.labels).unwrap_or(serde_json::Value::Null),
            enrollment: p.enrollment.clone(),
            baseline_metastatic_sites: p.baseline_metastatic_sites.clone(),
        }
    }
}

/// The enrolment facts the report reads (Table 1 and Table 3 covariates, age at T0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnrollmentFacts {
    pub(crate) birth_year: u16,
    pub(crate) sex: Sex,
    pub(crate) histology: Histology,
    pub(crate) ecog: u8,
    pub(crate) t_stage: TStage,
    pub(crate) n_stage: NStage,
    /// `f64::to_bits`: stored and read back bit for bit (a decimal text form need not parse back
    /// to the same double with every parser).
    pub(crate) primary_size_mm_bits: u64,
    pub(crate) prior_systemic_lines: u8,
}

impl EnrollmentFacts {
    fn of(e: &Enrollment) -> EnrollmentFacts {
        EnrollmentFacts {
            birth_year: e.birth_year,
            sex: e.sex,
            histology: e.histology,
            ecog: e.ecog,
            t_stage: e.t_stage,
            n_stage: e.n_stage,
            primary_size_mm_bits: e.primary_size_mm.to_bits(),
            prior_systemic_lines: e.prior_systemic_lines,
        }
    }

    fn primary_size_mm(&self) -> f64 {
        f64::from_bits(self.primary_size_mm_bits)
    }
}

/// Exactly what the report reads of one patient, compact: the labels through the lenient shape
/// (only the fields the report uses), the enrolment facts it uses and the baseline metastatic
/// organs. [`build`](crate::build) turns every [`PatientInput`] into one of these first, so a
/// report built from stored rows ([`crate::build_from_rows`]) is the same, byte for byte, as one
/// built from the inputs the rows were made of. [`PatientRow::to_bytes`] / [`PatientRow::from_bytes`]
/// store it (`registry report`'s snapshot, docs/report.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientRow {
    labels: LabelsIn,
    enrollment: Option<EnrollmentFacts>,
    baseline_metastatic_sites: Option<Vec<Organ>>,
}

impl PatientRow {
    /// The row of one patient's input; `index` names the patient in an error.
    pub fn from_input(index: usize, p: &PatientInput) -> Result<PatientRow, ReportError> {
        Ok(PatientRow {
            labels: parse_labels(index, &p.labels)?,
            enrollment: p.enrollment.as_ref().map(EnrollmentFacts::of),
            baseline_metastatic_sites: p.baseline_metastatic_sites.clone(),
        })
    }

    /// The row of a projection (what [`PatientInput::from_projection`] gives, as a row).
    pub fn from_projection(p: &PatientProjection) -> Result<PatientRow, ReportError> {
        PatientRow::from_input(0, &PatientInput::from_projection(p))
    }

    pub(crate) fn labels(&self) -> &LabelsIn {
        &self.labels
    }

    /// The patient's id (from the labels).
    pub fn patient_id(&self) -> &str {
        &self.labels.patient_id
    }

    /// A compact serialisation (JSON of the row; the one float as its bits).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings, integers, dates and booleans only: serialisation cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads back what [`PatientRow::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<PatientRow, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub(crate) fn into_subject(self) -> Subject {
        Subject::new(self.labels, self.enrollment.as_ref(), self.baseline_metastatic_sites.as_deref())
    }
}

/// Everything the report is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInput {
    /// Clinical cut-off of the view the labels were computed in.
    pub as_of: NaiveDate,
    /// Knowledge cut-off of the view; `None` = everything received.
    pub known_at: Option<DateTime<Utc>>,
    /// Every listed patient, any order (the report sorts by patient_id).
    pub patients: Vec<PatientInput>,
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A labels object that does not have the shape of `interfaces.md`.
    #[error("labels of patient #{index} ({patient_id}) are not readable: {source}")]
    Labels { index: usize, patient_id: String, source: serde_json::Error },
}

// ---- the lenient labels shape -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct LabelsIn {
    pub(crate) patient_id: String,
    pub(crate) status: String,
    pub(crate) index_date: Option<NaiveDate>,
    pub(crate) baseline: Option<BaselineIn>,
    pub(crate) best_response: Option<String>,
    pub(crate) objective_response: Option<bool>,
    pub(crate) pd1: Option<ProgressionIn>,
    pub(crate) pfs1: Option<ClockIn>,
    pub(crate) pfs2: Option<ClockIn>,
    pub(crate) os: Option<ClockIn>,
    pub(crate) rt: RtIn,
    pub(crate) cbpd: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct BaselineIn {
    pub(crate) bbm: Option<bool>,
    pub(crate) bbm_class: Option<String>,
    pub(crate) metastatic_organs: Option<u32>,
    pub(crate) metastatic_lesions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProgressionIn {
    pub(crate) pattern: Option<String>,
    pub(crate) extent: Option<String>,
    pub(crate) sites: Vec<String>,
    pub(crate) brain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClockIn {
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
    pub(crate) days: i64,
    pub(crate) event: bool,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RtIn {
    pub(crate) prior: Option<bool>,
    pub(crate) prior_brain: Option<bool>,
    pub(crate) salvage: Option<bool>,
    pub(crate) any: Option<bool>,
}

pub(crate) fn parse_labels(index: usize, v: &serde_json::Value) -> Result<LabelsIn, ReportError> {
    LabelsIn::deserialize(v).map_err(|source| ReportError::Labels {
        index,
        patient_id: v.get("patient_id").and_then(|p| p.as_str()).unwrap_or("?").to_owned(),
        source,
    })
}

// ---- the flat subject ---------------------------------------------------------------------------

/// A time-to-event observation as the estimators take it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Obs {
    /// Days from the clock's start; a negative clock (death dated before the start, kept as
    /// recorded in the labels) enters the estimators at day 0.
    pub(crate) time: f64,
    pub(crate) event: bool,
}

/// One patient, flattened for the analyses.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub(crate) labels: LabelsIn,
    pub(crate) indexed: bool,
    /// Age at T0: year(index_date) − birth_year.
    pub(crate) age: Option<f64>,
    pub(crate) sex: Option<Sex>,
    pub(crate) histology: Option<Histology>,
    pub(crate) ecog: Option<u8>,
    pub(crate) t_stage: Option<TStage>,
    pub(crate) n_stage: Option<NStage>,
    pub(crate) primary_size_mm: Option<f64>,
    pub(crate) prior_lines: Option<u8>,
    /// Organs with a metastasis at baseline; `None` without a baseline.
    pub(crate) baseline_sites: Option<Vec<Organ>>,
}

impl Subject {
    pub(crate) fn new(labels: LabelsIn, enrollment: Option<&EnrollmentFacts>, baseline_sites: Option<&[Organ]>) -> Subject {
        let indexed = labels.status == "indexed";
        let age = match (enrollment, labels.index_date) {
            (Some(e), Some(t0)) => Some(f64::from(t0.year() - i32::from(e.birth_year))),
            _ => None,
        };
        Subject {
            indexed,
            age,
            sex: enrollment.map(|e| e.sex),
            histology: enrollment.map(|e| e.histology),
            ecog: enrollment.map(|e| e.ecog),
            t_stage: enrollment.map(|e| e.t_stage),
            n_stage: enrollment.map(|e| e.n_stage),
            primary_size_mm: enrollment.map(EnrollmentFacts::primary_size_mm).filter(|v| v.is_finite()),
            prior_lines: enrollment.map(|e| e.prior_systemic_lines),
            // Sites only mean something with a baseline in the labels.
            baseline_sites: baseline_sites.filter(|_| labels.baseline.is_some()).map(<[Organ]>::to_vec),
            labels,
        }
    }

    pub(crate) fn clock(c: &Option<ClockIn>) -> Option<Obs> {
        c.as_ref().map(|c| Obs { time: c.days.max(0) as f64, event: c.event })
    }

    pub(crate) fn pfs1(&self) -> Option<Obs> {
        Self::clock(&self.labels.pfs1)
    }
    pub(crate) fn pfs2(&self) -> Option<Obs> {
        Self::clock(&self.labels.pfs2)
    }
    pub(crate) fn os(&self) -> Option<Obs> {
        Self::clock(&self.labels.os)
    }

    pub(crate) fn bbm(&self) -> Option<bool> {
        self.labels.baseline.as_ref().and_then(|b| b.bbm)
    }

    /// Baseline brain class: `none`, `oligo` or `multiple`; `None` without a baseline.
    pub(crate) fn baseline_brain(&self) -> Option<&str> {
        let b = self.labels.baseline.as_ref()?;
        match b.bbm? {
            false => Some("none"),
            true => b.bbm_class.as_deref().or(Some("multiple")),
        }
    }

    pub(crate) fn pattern(&self) -> Option<&str> {
        self.labels.pd1.as_ref().and_then(|p| p.pattern.as_deref())
    }

    pub(crate) fn adenocarcinoma(&self) -> Option<bool> {
        self.histology.map(|h| h == Histology::Adenocarcinoma)
    }

    /// ECOG ≥ 2.
    pub(crate) fn ecog_2plus(&self) -> Option<bool> {
        self.ecog.map(|e| e >= 2)
    }

    /// T3–4 (TX unknown).
    pub(crate) fn t3_4(&self) -> Option<bool> {
        match self.t_stage? {
            TStage::T1 | TStage::T2 => Some(false),
            TStage::T3 | TStage::T4 => Some(true),
            TStage::TX => None,
        }
    }

    /// N1–3 (NX unknown).
    pub(crate) fn n1_3(&self) -> Option<bool> {
        match self.n_stage? {
            NStage::N0 => Some(false),
            NStage::N1 | NStage::N2 | NStage::N3 => Some(true),
            NStage::NX => None,
        }
    }

    pub(crate) fn female(&self) -> Option<bool> {
        self.sex.map(|s| s == Sex::Female)
    }

    /// ≥ 3 metastatic organs (the study splits 1–2 vs ≥ 3).
    pub(crate) fn organs_3plus(&self) -> Option<bool> {
        self.labels.baseline.as_ref().and_then(|b| b.metastatic_organs).map(|n| n >= 3)
    }

    /// A metastasis in `organ` at baseline (the study's "presence of … metastases").
    pub(crate) fn metastasis_in(&self, organ: Organ) -> Option<bool> {
        self.baseline_sites.as_ref().map(|s| s.contains(&organ))
    }

    /// ≥ 6 metastatic lesions (the study splits 1–5 vs ≥ 6).
    pub(crate) fn lesions_6plus(&self) -> Option<bool> {
        self.labels.baseline.as_ref().and_then(|b| b.metastatic_lesions).map(|n| n >= 6)
    }
}
