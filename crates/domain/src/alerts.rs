//! Alerts as data (`domain.md`, "Alerts"): what changed between two projections of a patient that
//! a clinician or registry manager should hear about, and the clock-driven `followup_overdue`.
//!
//! `alert_id` is the hex SHA-256 of (kind, patient_id, facts): the same facts give the same id
//! whatever the arrival order or batching that led to them, so the id doubles as the bus dedupe key.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::labels::{BrainAtProgression, BrainClass, Clock, Progression};
use crate::projection::PatientProjection;

/// Alert kinds; the subject is `registry.alerts.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    FirstProgression,
    BrainOligoProgression,
    OligoBbmWithoutUpfrontBrainRt,
    SecondProgression,
    Death,
    FollowupOverdue,
    LabelRevised,
    DataQuality,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::FirstProgression => "first_progression",
            AlertKind::BrainOligoProgression => "brain_oligo_progression",
            AlertKind::OligoBbmWithoutUpfrontBrainRt => "oligo_bbm_without_upfront_brain_rt",
            AlertKind::SecondProgression => "second_progression",
            AlertKind::Death => "death",
            AlertKind::FollowupOverdue => "followup_overdue",
            AlertKind::LabelRevised => "label_revised",
            AlertKind::DataQuality => "data_quality",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Hex SHA-256 of (kind, patient_id, facts).
    pub alert_id: String,
    pub kind: AlertKind,
    pub patient_id: String,
    /// A JSON object with the facts that triggered the alert.
    pub facts: Value,
    /// The event that completed the facts; null for clock-driven alerts.
    pub event_id: Option<Uuid>,
}

impl Alert {
    fn new(kind: AlertKind, patient_id: &str, facts: Value, event_id: Option<Uuid>) -> Alert {
        Alert { alert_id: alert_id(kind, patient_id, &facts), kind, patient_id: patient_id.to_owned(), facts, event_id }
    }
}

/// The deterministic id of an alert: hex SHA-256 over kind, patient id and the facts' JSON.
pub fn alert_id(kind: AlertKind, patient_id: &str, facts: &Value) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update([0u8]);
    h.update(patient_id.as_bytes());
    h.update([0u8]);
    h.update(facts.to_string().as_bytes());
    hex::encode(h.finalize())
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn progression_facts(which: &str, p: &Progression) -> Value {
    json!({
        "progression": which,
        "date": p.date,
        "pattern": p.pattern,
        "extent": p.extent,
        "sites": p.sites,
        "brain": p.brain,
        "salvage_candidate": p.salvage_candidate,
    })
}

fn oligo_bbm_facts(p: &PatientProjection) -> Option<Value> {
    let b = p.labels.baseline.as_ref()?;
    (b.bbm_class == Some(BrainClass::Oligo) && p.labels.rt.prior_brain == Some(false)).then(|| {
        json!({
            "index_date": p.labels.index_date,
            "baseline_scan_date": b.scan_date,
            "brain_lesions": b.brain_lesions,
        })
    })
}

fn brain_oligo_facts(which: &str, p: Option<&Progression>) -> Option<Value> {
    let p = p.filter(|p| p.brain == BrainAtProgression::Oligo)?;
    Some(json!({ "progression": which, "date": p.date, "sites": p.sites, "salvage_candidate": p.salvage_candidate }))
}

/// A progression label was revised: it disappeared, or its date or pattern changed.
fn progression_revised(before: Option<&Progression>, after: Option<&Progression>) -> bool {
    match (before, after) {
        (Some(b), Some(a)) => b.date != a.date || b.pattern != a.pattern,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A clock was revised, as opposed to moved on by a new event in order: a clock that appears, a
/// censored clock whose end moves later, or a censored clock that gets its event on or after its
/// censoring date is the normal course of follow-up; anything else (start changed, end moved
/// earlier, event undone, event date or reason changed, clock gone) is a revision.
fn clock_revised(before: Option<&Clock>, after: Option<&Clock>) -> bool {
    match (before, after) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(b), Some(a)) => {
            if b == a {
                false
            } else if b.start != a.start || b.event {
                true
            } else {
                a.end < b.end
            }
        }
    }
}

/// The alerts raised by going from `before` (None: the patient was not listed) to `after`.
/// `completing_event` is the event whose arrival produced `after` (None for a replay or a batch).
/// Order: by kind as listed in `domain.md`, then by the facts.
pub fn alerts_between(
    before: Option<&PatientProjection>,
    after: &PatientProjection,
    completing_event: Option<Uuid>,
) -> Vec<Alert> {
    let pid = after.patient_id.as_str();
    let la = &after.labels;
    let lb = before.map(|b| &b.labels);
    let mut out = Vec::new();
    let mk = |kind, facts| Alert::new(kind, pid, facts, completing_event);

    if let Some(p1) = la.pd1.as_ref().filter(|_| lb.and_then(|b| b.pd1.as_ref()).is_none()) {
        out.push(mk(AlertKind::FirstProgression, progression_facts("pd1", p1)));
    }
    for (which, a, b) in [
        ("pd1", la.pd1.as_ref(), lb.and_then(|b| b.pd1.as_ref())),
        ("pd2", la.pd2.as_ref(), lb.and_then(|b| b.pd2.as_ref())),
    ] {
        if let Some(f) = brain_oligo_facts(which, a) {
            if brain_oligo_facts(which, b).as_ref() != Some(&f) {
                out.push(mk(AlertKind::BrainOligoProgression, f));
            }
        }
    }
    if let Some(f) = oligo_bbm_facts(after) {
        if before.and_then(oligo_bbm_facts).is_none() {
            out.push(mk(AlertKind::OligoBbmWithoutUpfrontBrainRt, f));
        }
    }
    if let Some(p2) = la.pd2.as_ref().filter(|_| lb.and_then(|b| b.pd2.as_ref()).is_none()) {
        out.push(mk(AlertKind::SecondProgression, progression_facts("pd2", p2)));
    }
    if let Some(d) = la.death_date.filter(|_| lb.and_then(|b| b.death_date).is_none()) {
        out.push(mk(AlertKind::Death, json!({ "death_date": d })));
    }
    if let Some(lb) = lb {
        for (label, b, a) in [("pd1", lb.pd1.as_ref(), la.pd1.as_ref()), ("pd2", lb.pd2.as_ref(), la.pd2.as_ref())] {
            if progression_revised(b, a) {
                out.push(mk(
                    AlertKind::LabelRevised,
                    json!({ "label": label, "before": to_value(&b), "after": to_value(&a) }),
                ));
            }
        }
        for (label, b, a) in [
            ("pfs1", lb.pfs1.as_ref(), la.pfs1.as_ref()),
            ("pfs2", lb.pfs2.as_ref(), la.pfs2.as_ref()),
            ("os", lb.os.as_ref(), la.os.as_ref()),
        ] {
            if clock_revised(b, a) {
                out.push(mk(
                    AlertKind::LabelRevised,
                    json!({ "label": label, "before": to_value(&b), "after": to_value(&a) }),
                ));
            }
        }
    }
    for f in &after.findings {
        if before.is_none_or(|b| !b.findings.contains(f)) {
            out.push(mk(
                AlertKind::DataQuality,
                json!({ "finding": f.kind, "event_id": f.event_id, "message": f.message }),
            ));
        }
    }
    out
}

/// The clock-driven alert: alive, not lost to follow-up, and the last assessment is more than
/// 56 + 14 days (cfg) before `view_date`. Its facts (and so its id) do not depend on the view date.
pub fn followup_overdue(p: &PatientProjection, view_date: NaiveDate, cfg: &Config) -> Option<Alert> {
    if p.labels.death_date.is_some() || p.lost_to_follow_up {
        return None;
    }
    let last = p.last_assessment?;
    let limit = cfg.followup_overdue_days();
    if (view_date - last).num_days() <= limit {
        return None;
    }
    let facts = json!({ "last_assessment": last, "overdue_after_days": limit });
    Some(Alert::new(AlertKind::FollowupOverdue, p.patient_id.as_str(), facts, None))
}
