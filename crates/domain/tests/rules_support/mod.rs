//! A tiny DSL for hand-written timelines: `Tl::new().enrolled(..).crizotinib(..).scan(..)`.
#![allow(dead_code, unreachable_pub, unused_imports)]

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use registry_domain::config::Config;
use registry_domain::events::*;
use registry_domain::labels::Labels;
use registry_domain::projection::{project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use uuid::Uuid;

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

pub fn noon(date: NaiveDate) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(0).expect("utc").from_utc_datetime(&date.and_hms_opt(12, 0, 0).expect("time"))
}

/// A lesion listing.
#[derive(Clone)]
pub struct L(pub Lesion);

pub fn lesion(id: &str, organ: Organ, mm: f64) -> L {
    L(Lesion {
        lesion_id: id.into(),
        organ,
        primary: false,
        diameter_mm: Some(mm),
        state: LesionState::Present,
        role: None,
    })
}
/// A lesion listed without a diameter (present).
pub fn no_size(id: &str, organ: Organ) -> L {
    L(Lesion {
        lesion_id: id.into(),
        organ,
        primary: false,
        diameter_mm: None,
        state: LesionState::Present,
        role: None,
    })
}
pub fn absent(id: &str, organ: Organ) -> L {
    L(Lesion { lesion_id: id.into(), organ, primary: false, diameter_mm: None, state: LesionState::Absent, role: None })
}
pub fn not_evaluated(id: &str, organ: Organ) -> L {
    L(Lesion {
        lesion_id: id.into(),
        organ,
        primary: false,
        diameter_mm: None,
        state: LesionState::NotEvaluated,
        role: None,
    })
}
pub fn unequivocal(id: &str, organ: Organ) -> L {
    L(Lesion {
        lesion_id: id.into(),
        organ,
        primary: false,
        diameter_mm: None,
        state: LesionState::UnequivocalProgression,
        role: None,
    })
}

impl L {
    pub fn primary(mut self) -> L {
        self.0.primary = true;
        self
    }
    pub fn target(mut self) -> L {
        self.0.role = Some(LesionRole::Target);
        self
    }
    pub fn non_target(mut self) -> L {
        self.0.role = Some(LesionRole::NonTarget);
        self
    }
    pub fn mm(mut self, mm: f64) -> L {
        self.0.diameter_mm = Some(mm);
        self
    }
}

pub use registry_domain::events::Organ::{Adrenal, Bone, Brain, DistantLn, Liver, Lung, Other, Pleura, RegionalLn};

/// A patient's timeline under construction. Event ids are deterministic (a counter).
#[derive(Clone)]
pub struct Tl {
    pub pid: String,
    pub events: Vec<Event>,
    next: u128,
}

impl Default for Tl {
    fn default() -> Self {
        Tl::new()
    }
}

impl Tl {
    pub fn new() -> Tl {
        Tl::for_patient("P001")
    }
    pub fn for_patient(pid: &str) -> Tl {
        let seed = pid.bytes().fold(0u128, |a, b| a * 131 + u128::from(b));
        Tl { pid: pid.into(), events: Vec::new(), next: seed << 32 }
    }
    fn new_id(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }
    /// Adds an event; returns its id through `last_id`.
    pub fn push(mut self, date: &str, payload: Payload) -> Tl {
        let id = self.new_id();
        let date = d(date);
        self.events.push(Event {
            event_id: id,
            patient_id: PatientId::parse(&self.pid).expect("pid"),
            site_id: SiteId::parse("fuscc").expect("site"),
            occurred_on: date,
            recorded_at: noon(date),
            supersedes: None,
            payload,
        });
        self
    }
    pub fn last_id(&self) -> Uuid {
        self.events.last().expect("an event").event_id
    }
    pub fn id_at(&self, i: usize) -> Uuid {
        self.events[i].event_id
    }
    /// Marks the last event as a correction of `target`.
    pub fn superseding(mut self, target: Uuid) -> Tl {
        if let Some(e) = self.events.last_mut() {
            e.supersedes = Some(target);
        }
        self
    }
    pub fn enrolled_dx(self, date: &str, diagnosis: &str) -> Tl {
        self.push(
            date,
            Payload::PatientEnrolled(Enrollment {
                diagnosis_date: d(diagnosis),
                birth_year: 1965,
                sex: Sex::Female,
                histology: Histology::Adenocarcinoma,
                ecog: 1,
                t_stage: TStage::T2,
                n_stage: NStage::N2,
                primary_size_mm: 35.0,
                alk_method: AlkMethod::Fish,
                prior_systemic_lines: 0,
            }),
        )
    }
    /// Enrolled on `date`, diagnosed on the same day.
    pub fn enrolled(self, date: &str) -> Tl {
        self.enrolled_dx(date, date)
    }
    pub fn start(self, date: &str, agent: Agent, course: &str) -> Tl {
        self.push(
            date,
            Payload::TreatmentStarted(TreatmentStart {
                course_id: course.into(),
                agent,
                dose_mg: None,
                schedule: None,
            }),
        )
    }
    pub fn stop(self, date: &str, agent: Agent, course: &str) -> Tl {
        self.push(
            date,
            Payload::TreatmentStopped(TreatmentStop {
                course_id: course.into(),
                agent,
                reason: StopReason::Progression,
            }),
        )
    }
    /// Crizotinib course `crizo` started on `date`.
    pub fn crizotinib(self, date: &str) -> Tl {
        self.start(date, Agent::Crizotinib, "crizo")
    }
    pub fn scan(self, date: &str, lesions: Vec<L>) -> Tl {
        self.scan_with(date, lesions, None)
    }
    pub fn scan_reported(self, date: &str, lesions: Vec<L>, r: ReportedResponse) -> Tl {
        self.scan_with(date, lesions, Some(r))
    }
    fn scan_with(self, date: &str, lesions: Vec<L>, r: Option<ReportedResponse>) -> Tl {
        self.push(
            date,
            Payload::ImagingAssessed(Imaging {
                modality: ImagingModality::Ct,
                regions: vec![ImagedRegion::Chest],
                lesions: lesions.into_iter().map(|l| l.0).collect(),
                reported_response: r,
            }),
        )
    }
    pub fn rt(self, date: &str, modality: RtModality, region: RtRegion) -> Tl {
        self.push(
            date,
            Payload::RadiotherapyDelivered(Radiotherapy {
                course_id: format!("rt-{date}"),
                modality,
                region,
                lesion_ids: None,
                end_date: None,
                total_dose_gy: 20.0,
                fractions: 1,
                intent: None,
            }),
        )
    }
    pub fn death(self, date: &str) -> Tl {
        self.push(date, Payload::DeathRecorded(Death { cause: DeathCause::Disease }))
    }
    pub fn followup(self, date: &str, status: FollowupStatus) -> Tl {
        self.push(date, Payload::FollowupRecorded(Followup { status }))
    }
    pub fn retract(self, date: &str, target: Uuid) -> Tl {
        self.push(date, Payload::EventRetracted(Retraction { target_event_id: target, reason: "wrong".into() }))
    }

    /// The events as stored, in the order written, arriving one second apart from 2030-01-01.
    pub fn recorded(&self) -> Vec<RecordedEvent> {
        let base = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("time");
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| RecordedEvent {
                event: e.clone(),
                seq: i as u64 + 1,
                received_at: base + chrono::Duration::seconds(i as i64),
            })
            .collect()
    }
    pub fn project_view(&self, view: View) -> Option<PatientProjection> {
        project_patient(&PatientId::parse(&self.pid).expect("pid"), &self.recorded(), &view, &Config::default())
    }
    pub fn project(&self, as_of: &str) -> PatientProjection {
        self.project_view(View { as_of: d(as_of), known_at: None }).expect("patient listed")
    }
    pub fn labels(&self, as_of: &str) -> Labels {
        self.project(as_of).labels
    }
}

/// The usual start of a timeline: enrolled 2015-01-10 (diagnosis 2014-12-01), crizotinib from
/// 2015-03-02 (T0).
pub fn base() -> Tl {
    Tl::new().enrolled_dx("2015-01-10", "2014-12-01").crizotinib("2015-03-02")
}

pub const T0: &str = "2015-03-02";
pub const VIEW: &str = "2018-05-31";

impl L {
    pub fn up(mut self) -> L {
        self.0.state = LesionState::UnequivocalProgression;
        self
    }
}

/// Computed time-point responses as strings, for compact assertions.
pub fn responses(p: &PatientProjection) -> Vec<(String, u8, &'static str)> {
    p.timepoints.iter().map(|t| (t.date.to_string(), t.segment, t.response.as_str())).collect()
}
