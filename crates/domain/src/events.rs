//! Event types of the wire contract (`shared/spec/events.md`, schema version 1).
//!
//! These are the typed, validated form of what hospitals send. Parsing goes through
//! [`crate::validate`]; this module only defines the shapes and their canonical JSON encoding.
//! The canonical encoding (`Event::canonical_json`) is what the store keeps and compares for
//! duplicate detection: fixed key order, defaults made explicit, optional fields omitted when absent,
//! dates normalised. Two inputs with the same canonical bytes are the same event.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Pseudonymous registry patient id, `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PatientId(String);

impl PatientId {
    /// Parses a patient id; `None` when it does not match the contract's pattern.
    pub fn parse(s: &str) -> Option<PatientId> {
        id_matches(s, 64, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).then(|| PatientId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The feeding hospital, `^[a-z0-9][a-z0-9_-]{0,31}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteId(String);

impl SiteId {
    /// Parses a site id; `None` when it does not match the contract's pattern.
    pub fn parse(s: &str) -> Option<SiteId> {
        let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        (first_ok
            && s.len() <= 32
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
        .then(|| SiteId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn id_matches(s: &str, max: usize, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric()) && s.len() <= max && chars.all(rest)
}

/// The event types of schema version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    PatientEnrolled,
    TreatmentStarted,
    TreatmentStopped,
    RadiotherapyDelivered,
    ImagingAssessed,
    DeathRecorded,
    FollowupRecorded,
    EventRetracted,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::PatientEnrolled,
        EventType::TreatmentStarted,
        EventType::TreatmentStopped,
        EventType::RadiotherapyDelivered,
        EventType::ImagingAssessed,
        EventType::DeathRecorded,
        EventType::FollowupRecorded,
        EventType::EventRetracted,
    ];

    /// The wire name, e.g. `imaging.assessed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PatientEnrolled => "patient.enrolled",
            EventType::TreatmentStarted => "treatment.started",
            EventType::TreatmentStopped => "treatment.stopped",
            EventType::RadiotherapyDelivered => "radiotherapy.delivered",
            EventType::ImagingAssessed => "imaging.assessed",
            EventType::DeathRecorded => "death.recorded",
            EventType::FollowupRecorded => "followup.recorded",
            EventType::EventRetracted => "event.retracted",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Rank in the canonical order of a patient's events (domain.md, preamble):
    /// enrolled < started < radiotherapy < imaging < stopped < follow-up < death. Retractions are
    /// not clinical events; they sort last.
    pub fn rank(self) -> u8 {
        match self {
            EventType::PatientEnrolled => 0,
            EventType::TreatmentStarted => 1,
            EventType::RadiotherapyDelivered => 2,
            EventType::ImagingAssessed => 3,
            EventType::TreatmentStopped => 4,
            EventType::FollowupRecorded => 5,
            EventType::DeathRecorded => 6,
            EventType::EventRetracted => 7,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated event: the envelope and its typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub patient_id: PatientId,
    pub site_id: SiteId,
    /// Clinical (valid-time) date; its meaning depends on the type.
    pub occurred_on: NaiveDate,
    /// When the source system recorded the fact; compares as an instant.
    pub recorded_at: DateTime<FixedOffset>,
    /// An earlier event of the same patient and type that this one corrects.
    pub supersedes: Option<Uuid>,
    pub payload: Payload,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The wire schema version this type encodes.
    pub const SCHEMA_VERSION: u32 = 1;

    /// Canonical JSON: envelope keys in contract order, payload in struct order, defaults explicit,
    /// measurements rounded to [`MEASURE_DECIMALS`] decimals (see [`round_measure`]).
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut payload = self.payload.clone();
        payload.normalise();
        #[derive(Serialize)]
        struct Wire<'a> {
            event_id: String,
            event_type: &'static str,
            schema_version: u32,
            patient_id: &'a PatientId,
            site_id: &'a SiteId,
            occurred_on: NaiveDate,
            recorded_at: String,
            supersedes: Option<String>,
            payload: &'a Payload,
        }
        let wire = Wire {
            event_id: self.event_id.hyphenated().to_string(),
            event_type: self.event_type().as_str(),
            schema_version: Self::SCHEMA_VERSION,
            patient_id: &self.patient_id,
            site_id: &self.site_id,
            occurred_on: self.occurred_on,
            recorded_at: self.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            supersedes: self.supersedes.map(|u| u.hyphenated().to_string()),
            payload: &payload,
        };
        // Serialising plain structs, strings, numbers and enums into a Vec cannot fail. A typical
        // event is about 1 KB: start there rather than at serde_json's 128 bytes and regrow.
        let mut out = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut out, &wire) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }
}

/// Decimals kept for measurements (mm, mg, Gy): 0.001, far below what imaging or dosimetry resolve.
pub const MEASURE_DECIMALS: i32 = 3;

/// Rounds a measurement to [`MEASURE_DECIMALS`] decimals.
///
/// Why: serde_json (without its `float_roundtrip` feature) may read a 17-digit float back one ULP
/// off, so `canonical_json` would not be a fixed point. A value with at most 3 decimals in range
/// (≤ 100000) has at most 9 significant digits, which serde_json reads exactly.
pub fn round_measure(x: f64) -> f64 {
    let scale = 10f64.powi(MEASURE_DECIMALS);
    let rounded = (x * scale).round() / scale;
    // Never turn 0.0001 into -0.0 or keep a -0.0: one spelling for zero.
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// The typed payload; the variant is the event type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    PatientEnrolled(Enrollment),
    TreatmentStarted(TreatmentStart),
    TreatmentStopped(TreatmentStop),
    RadiotherapyDelivered(Radiotherapy),
    ImagingAssessed(Imaging),
    DeathRecorded(Death),
    FollowupRecorded(Followup),
    EventRetracted(Retraction),
}

impl Payload {
    pub fn event_type(&self) -> EventType {
        match self {
            Payload::PatientEnrolled(_) => EventType::PatientEnrolled,
            Payload::TreatmentStarted(_) => EventType::TreatmentStarted,
            Payload::TreatmentStopped(_) => EventType::TreatmentStopped,
            Payload::RadiotherapyDelivered(_) => EventType::RadiotherapyDelivered,
            Payload::ImagingAssessed(_) => EventType::ImagingAssessed,
            Payload::DeathRecorded(_) => EventType::DeathRecorded,
            Payload::FollowupRecorded(_) => EventType::FollowupRecorded,
            Payload::EventRetracted(_) => EventType::EventRetracted,
        }
    }

    /// Rounds every measurement (mm, mg, Gy) with [`round_measure`]; `parse_event` and
    /// `canonical_json` both apply it, so parsed events equal their canonical re-parse.
    pub fn normalise(&mut self) {
        match self {
            Payload::PatientEnrolled(e) => e.primary_size_mm = round_measure(e.primary_size_mm),
            Payload::TreatmentStarted(t) => t.dose_mg = t.dose_mg.map(round_measure),
            Payload::RadiotherapyDelivered(r) => r.total_dose_gy = round_measure(r.total_dose_gy),
            Payload::ImagingAssessed(i) => {
                for lesion in &mut i.lesions {
                    lesion.diameter_mm = lesion.diameter_mm.map(round_measure);
                }
            }
            Payload::TreatmentStopped(_) | Payload::DeathRecorded(_) | Payload::FollowupRecorded(_) | Payload::EventRetracted(_) => {}
        }
    }

    /// Deserialises a payload of the given type (unknown fields rejected).
    pub fn from_value(event_type: EventType, value: serde_json::Value) -> Result<Payload, serde_json::Error> {
        Ok(match event_type {
            EventType::PatientEnrolled => Payload::PatientEnrolled(serde_json::from_value(value)?),
            EventType::TreatmentStarted => Payload::TreatmentStarted(serde_json::from_value(value)?),
            EventType::TreatmentStopped => Payload::TreatmentStopped(serde_json::from_value(value)?),
            EventType::RadiotherapyDelivered => Payload::RadiotherapyDelivered(serde_json::from_value(value)?),
            EventType::ImagingAssessed => Payload::ImagingAssessed(serde_json::from_value(value)?),
            EventType::DeathRecorded => Payload::DeathRecorded(serde_json::from_value(value)?),
            EventType::FollowupRecorded => Payload::FollowupRecorded(serde_json::from_value(value)?),
            EventType::EventRetracted => Payload::EventRetracted(serde_json::from_value(value)?),
        })
    }
}

/// `patient.enrolled`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub diagnosis_date: NaiveDate,
    #[serde(deserialize_with = "json_int::de")]
    pub birth_year: u16,
    pub sex: Sex,
    pub histology: Histology,
    #[serde(deserialize_with = "json_int::de")]
    pub ecog: u8,
    pub t_stage: TStage,
    pub n_stage: NStage,
    pub primary_size_mm: f64,
    pub alk_method: AlkMethod,
    #[serde(deserialize_with = "json_int::de")]
    pub prior_systemic_lines: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Histology {
    Adenocarcinoma,
    Squamous,
    Adenosquamous,
    LargeCell,
    Nos,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TStage {
    T1,
    T2,
    T3,
    T4,
    TX,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NStage {
    N0,
    N1,
    N2,
    N3,
    NX,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlkMethod {
    Fish,
    Ihc,
    Ngs,
    RtPcr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    Crizotinib,
    Alectinib,
    Ceritinib,
    Brigatinib,
    Lorlatinib,
    Ensartinib,
    Chemotherapy,
    Immunotherapy,
    Other,
}

impl Agent {
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Crizotinib => "crizotinib",
            Agent::Alectinib => "alectinib",
            Agent::Ceritinib => "ceritinib",
            Agent::Brigatinib => "brigatinib",
            Agent::Lorlatinib => "lorlatinib",
            Agent::Ensartinib => "ensartinib",
            Agent::Chemotherapy => "chemotherapy",
            Agent::Immunotherapy => "immunotherapy",
            Agent::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Qd,
    Bid,
    Other,
}

/// `treatment.started`: occurred_on is the first day of the course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentStart {
    pub course_id: String,
    pub agent: Agent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_mg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Progression,
    Toxicity,
    Death,
    Completed,
    PatientChoice,
    Other,
}

/// `treatment.stopped`: occurred_on is the last day of the course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentStop {
    pub course_id: String,
    pub agent: Agent,
    pub reason: StopReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtModality {
    Srs,
    Wbrt,
    Sbrt,
    Conventional,
}

impl RtModality {
    pub fn as_str(self) -> &'static str {
        match self {
            RtModality::Srs => "srs",
            RtModality::Wbrt => "wbrt",
            RtModality::Sbrt => "sbrt",
            RtModality::Conventional => "conventional",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtRegion {
    Brain,
    Thorax,
    Bone,
    Adrenal,
    Liver,
    LymphNode,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtIntent {
    Curative,
    Palliative,
    Consolidative,
    Salvage,
    Unknown,
}

/// `radiotherapy.delivered`: occurred_on is the first fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Radiotherapy {
    pub course_id: String,
    pub modality: RtModality,
    pub region: RtRegion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesion_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    pub total_dose_gy: f64,
    #[serde(deserialize_with = "json_int::de")]
    pub fractions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<RtIntent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImagingModality {
    Ct,
    Mri,
    PetCt,
    BoneScan,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImagedRegion {
    Chest,
    Abdomen,
    Pelvis,
    Brain,
    Bone,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Organ {
    Lung,
    Liver,
    Brain,
    Bone,
    Adrenal,
    RegionalLn,
    DistantLn,
    Pleura,
    Other,
}

impl Organ {
    pub fn as_str(self) -> &'static str {
        match self {
            Organ::Lung => "lung",
            Organ::Liver => "liver",
            Organ::Brain => "brain",
            Organ::Bone => "bone",
            Organ::Adrenal => "adrenal",
            Organ::RegionalLn => "regional_ln",
            Organ::DistantLn => "distant_ln",
            Organ::Pleura => "pleura",
            Organ::Other => "other",
        }
    }

    /// Lymph nodes are measured by short axis and follow RECIST's nodal rules.
    pub fn is_nodal(self) -> bool {
        matches!(self, Organ::RegionalLn | Organ::DistantLn)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LesionState {
    #[default]
    Present,
    Absent,
    NotEvaluated,
    UnequivocalProgression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionRole {
    Target,
    NonTarget,
}

/// One lesion listed at a time point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesion {
    pub lesion_id: String,
    pub organ: Organ,
    #[serde(default)]
    pub primary: bool,
    /// Longest diameter; short axis for lymph nodes. 0–500 mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diameter_mm: Option<f64>,
    #[serde(default)]
    pub state: LesionState,
    /// Honoured at baseline only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<LesionRole>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReportedResponse {
    CR,
    PR,
    SD,
    PD,
    NE,
}

/// `imaging.assessed`: one assessment time point; occurred_on is the study date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imaging {
    pub modality: ImagingModality,
    pub regions: Vec<ImagedRegion>,
    pub lesions: Vec<Lesion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_response: Option<ReportedResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathCause {
    Disease,
    Treatment,
    Other,
    Unknown,
}

/// `death.recorded`: occurred_on is the date of death.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Death {
    pub cause: DeathCause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupStatus {
    Alive,
    LostToFollowUp,
}

/// `followup.recorded`: occurred_on is the date of contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Followup {
    pub status: FollowupStatus,
}

/// `event.retracted`: hides its target in every view once known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retraction {
    pub target_event_id: Uuid,
    pub reason: String,
}

/// JSON Schema's `integer` is any number with a zero fractional part (`1.0` is an integer in
/// draft 2020-12), while serde's integer types refuse `1.0`. Integer fields go through this so the
/// types accept exactly what the schemas accept.
mod json_int {
    use serde::de::{Deserializer, Error, Unexpected, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    pub(super) fn de<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        d.deserialize_any(IntVisitor(PhantomData))
    }

    struct IntVisitor<T>(PhantomData<T>);

    impl<T: TryFrom<u64>> Visitor<'_> for IntVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            u64::try_from(v)
                .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            // Exact integers only; the schema has already bounded the range.
            if v.fract() == 0.0 && v >= 0.0 && v <= u32::MAX as f64 {
                self.visit_u64(v as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
}
