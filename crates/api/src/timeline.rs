//! `GET /patients/{id}/timeline`: a patient's events in view, ordered by occurred_on then
//! arrival, with the computed time-point responses and each time point's target sum.
//!
//! Everything computed comes from the projection (`registry-domain`): the responses, S per time
//! point and segment 2's S0 (`PatientProjection`), and which events a retraction or correction
//! hides (`view::hidden_events`). This module only lays them out.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use registry_domain::events::{PatientId, Payload};
use registry_domain::projection::PatientProjection;
use registry_domain::view::{hidden_events, RecordedEvent, View};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// One event on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEvent {
    /// Position in the log (arrival order).
    pub seq: u64,
    /// When the registry received it (RFC 3339).
    pub received_at: String,
    /// False when a retraction or correction in view hides it.
    pub counts: bool,
    /// The event, canonical JSON.
    pub event: Value,
}

/// One computed time point.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    pub date: NaiveDate,
    pub segment: u8,
    pub response: String,
    /// S: the segment's targets' diameters measured at the time point (absent = 0); null without targets.
    pub target_sum_mm: Option<f64>,
    /// Whether every target was evaluated at the time point.
    pub all_targets_evaluated: bool,
}

/// The timeline JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub patient_id: String,
    pub site_id: String,
    pub as_of: NaiveDate,
    pub known_at: Option<String>,
    pub events: Vec<TimelineEvent>,
    /// Baseline scan date and S0 (segment 1), from the labels.
    pub baseline: Option<BaselinePoint>,
    /// S0 of segment 2 (the targets re-chosen at PD1), when there is a PD1.
    pub pd1_target_sum_mm: Option<f64>,
    pub timepoints: Vec<TimelinePoint>,
    pub labels: Value,
    pub findings: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselinePoint {
    pub scan_date: NaiveDate,
    pub target_sum_mm: Option<f64>,
}

/// Known events of the patient, one version per event_id (the first stored stands).
fn known(events: &[RecordedEvent], view: &View) -> Vec<RecordedEvent> {
    let mut by_id: BTreeMap<Uuid, &RecordedEvent> = BTreeMap::new();
    for r in events {
        if view.known_at.is_some_and(|k| r.received_at > k) {
            continue;
        }
        match by_id.get(&r.event.event_id) {
            Some(old) if old.seq <= r.seq => {}
            _ => {
                by_id.insert(r.event.event_id, r);
            }
        }
    }
    by_id.into_values().cloned().collect()
}

/// Builds the timeline of one patient in a view. `events` are the patient's stored events.
pub fn build(patient_id: &str, site_id: &str, events: &[RecordedEvent], projection: &PatientProjection, view: &View) -> Timeline {
    let known = known(events, view);
    let hidden = PatientId::parse(patient_id).map(|pid| hidden_events(&pid, &known, view)).unwrap_or_default();
    let mut in_view: Vec<&RecordedEvent> = known
        .iter()
        .filter(|r| {
            // Retractions fix what was recorded: they act in every as_of view.
            matches!(r.event.payload, Payload::EventRetracted(_)) || r.event.occurred_on <= view.as_of
        })
        .collect();
    in_view.sort_by_key(|r| (r.event.occurred_on, r.seq));
    let timeline_events = in_view
        .iter()
        .map(|r| TimelineEvent {
            seq: r.seq,
            received_at: r.received_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            counts: !hidden.contains(&r.event.event_id),
            event: serde_json::from_slice(&r.event.canonical_json()).unwrap_or(Value::Null),
        })
        .collect();
    let labels = &projection.labels;
    Timeline {
        patient_id: patient_id.to_owned(),
        site_id: site_id.to_owned(),
        as_of: view.as_of,
        known_at: view.known_at.map(|k| k.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        events: timeline_events,
        baseline: labels
            .baseline
            .as_ref()
            .map(|b| BaselinePoint { scan_date: b.scan_date, target_sum_mm: b.target_sum_mm }),
        pd1_target_sum_mm: projection.pd1_target_sum_mm,
        timepoints: projection
            .timepoints
            .iter()
            .map(|tp| TimelinePoint {
                date: tp.date,
                segment: tp.segment,
                response: tp.response.as_str().to_owned(),
                target_sum_mm: tp.target_sum_mm,
                all_targets_evaluated: tp.all_targets_evaluated,
            })
            .collect(),
        labels: serde_json::to_value(labels).unwrap_or(Value::Null),
        findings: serde_json::to_value(&projection.findings).unwrap_or(Value::Null),
    }
}
