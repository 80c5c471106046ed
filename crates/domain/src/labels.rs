//! The labels of one patient: the wire shape of `registry labels` and `GET /patients/{id}`
//! (`interfaces.md`, "Labels"). Key order as in the example, nulls never omitted, sets sorted,
//! dates `YYYY-MM-DD`. Deserialisable so that stored labels can be read back.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::events::{Agent, Organ, RtModality};

/// All labels of one patient in one view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub patient_id: String,
    pub status: Status,
    pub index_date: Option<NaiveDate>,
    pub diagnosis_date: Option<NaiveDate>,
    pub baseline: Option<Baseline>,
    pub best_response: Option<Response>,
    pub objective_response: Option<bool>,
    pub pd1: Option<Progression>,
    pub pd2: Option<Progression>,
    pub pfs1: Option<Clock>,
    pub pfs2: Option<Clock>,
    pub os: Option<Clock>,
    pub rt: RtFlags,
    pub cbpd: Option<bool>,
    pub next_therapy: Option<NextTherapy>,
    pub death_date: Option<NaiveDate>,
}

impl Labels {
    /// One JSON object on one line, without a trailing newline.
    pub fn to_json_line(&self) -> String {
        // Plain structs, strings, dates and finite numbers: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Indexed,
    NotIndexed,
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub scan_date: NaiveDate,
    pub bbm: bool,
    pub bbm_class: Option<BrainClass>,
    pub brain_lesions: u32,
    pub metastatic_organs: u32,
    pub metastatic_lesions: u32,
    /// S0 in mm; null when there is no target lesion. Whole numbers are written without `.0`.
    #[serde(serialize_with = "ser_mm", deserialize_with = "de_mm")]
    pub target_sum_mm: Option<f64>,
}

/// Brain disease class (baseline `bbm_class`): oligo (≤ 3 lesions, largest < 30 mm) or multiple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrainClass {
    Oligo,
    Multiple,
}

/// Brain at a progression: oligo, multiple, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrainAtProgression {
    Oligo,
    Multiple,
    None,
}

/// A time-point or best overall response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Response {
    CR,
    PR,
    SD,
    PD,
    NE,
}

impl Response {
    pub fn as_str(self) -> &'static str {
        match self {
            Response::CR => "CR",
            Response::PR => "PR",
            Response::SD => "SD",
            Response::PD => "PD",
            Response::NE => "NE",
        }
    }
}

/// Failure pattern at a progression (study: original, distant, both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Pattern {
    OF,
    DF,
    ODF,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extent {
    PrimaryOnly,
    MetastasisOnly,
    PrimaryAndMetastasis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalvageCandidate {
    Wbrt,
    Srs,
    Sbrt,
    None,
}

/// `pd1` / `pd2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progression {
    pub date: NaiveDate,
    pub pattern: Pattern,
    pub extent: Option<Extent>,
    /// Sorted by organ name.
    pub sites: Vec<Organ>,
    pub brain: BrainAtProgression,
    pub salvage_candidate: SalvageCandidate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockReason {
    Progression,
    Death,
    CensoredLastAssessment,
    CensoredNoAssessment,
    NoBaseline,
    CensoredLastKnownAlive,
}

/// A time-to-event clock (`pfs1`, `pfs2`, `os`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// end − start; negative when a death is dated before the start (kept as recorded).
    pub days: i64,
    pub event: bool,
    pub reason: ClockReason,
}

impl Clock {
    pub(crate) fn new(start: NaiveDate, end: NaiveDate, event: bool, reason: ClockReason) -> Clock {
        Clock { start, end, days: (end - start).num_days(), event, reason }
    }
}

/// Radiotherapy flags. `prior*` are null without T0, `salvage` without PD1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtFlags {
    pub prior: Option<bool>,
    pub prior_brain: Option<bool>,
    /// Sorted by name.
    pub prior_brain_modalities: Vec<RtModality>,
    pub prior_extracranial: Option<bool>,
    pub salvage: Option<bool>,
    /// Sorted by name.
    pub salvage_modalities: Vec<RtModality>,
    pub any: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextTherapy {
    pub date: NaiveDate,
    pub agent: Agent,
}

/// Writes whole millimetres as integers (`83`, as in the interfaces example), others as decimals.
fn ser_mm<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 => s.serialize_i64(*x as i64),
        Some(x) => s.serialize_f64(*x),
    }
}

fn de_mm<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)
}
