//! `GET /patients/{id}/timeline`: a patient's events in view, ordered by occurred_on then
//! arrival, with the computed time-point responses and each time point's target sum.
//!
//! The responses come from the projection (`registry-domain`). The projection does not expose the
//! per-time-point target sum S, so it is recomputed here for display, by the rules of
//! `domain.md` ("Baseline and reference sets", "Time points"): the targets are the feeder's marked
//! lesions or the RECIST choice at the baseline (segment 1) and at PD1 (segment 2); S sums their
//! diameters measured at the time point (absent = 0). A test checks that the baseline sum equals
//! the labels' `target_sum_mm` for every patient of a synthetic cohort; when the domain crate
//! exports S per time point this module should read it from there instead.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use registry_domain::config::Config;
use registry_domain::events::{Event, LesionRole, LesionState, Organ, Payload};
use registry_domain::projection::PatientProjection;
use registry_domain::view::{canonical_cmp, RecordedEvent, View};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

const EPS_MM: f64 = 1e-6;

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

/// Events hidden by a counting retraction or correction of the same patient (retracting a
/// retraction brings its target back; a correction hides every version it reaches).
fn hidden(events: &[RecordedEvent]) -> BTreeSet<Uuid> {
    let by_id: BTreeMap<Uuid, &Event> = events.iter().map(|r| (r.event.event_id, &r.event)).collect();
    // hider -> hidden edges, same patient, corrections of the same type only.
    let mut retracted_by: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    let mut superseded_by: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for e in by_id.values() {
        if let Payload::EventRetracted(r) = &e.payload {
            if let Some(t) = by_id.get(&r.target_event_id) {
                if t.patient_id == e.patient_id && t.event_id != e.event_id {
                    retracted_by.entry(t.event_id).or_default().push(e.event_id);
                }
            }
        }
        if let Some(s) = e.supersedes {
            if let Some(t) = by_id.get(&s) {
                if t.patient_id == e.patient_id && t.event_type() == e.event_type() && t.event_id != e.event_id {
                    superseded_by.entry(t.event_id).or_default().push(e.event_id);
                }
            }
        }
    }
    fn is_hidden(
        id: Uuid,
        r: &BTreeMap<Uuid, Vec<Uuid>>,
        s: &BTreeMap<Uuid, Vec<Uuid>>,
        depth: usize,
        memo: &mut BTreeMap<Uuid, bool>,
    ) -> bool {
        if depth > 64 {
            return false; // a cycle of links: the domain ignores such links
        }
        if let Some(v) = memo.get(&id) {
            return *v;
        }
        let by_retraction = r.get(&id).is_some_and(|hs| hs.iter().any(|h| !is_hidden(*h, r, s, depth + 1, memo)));
        let by_correction = s.get(&id).is_some_and(|hs| !hs.is_empty());
        let v = by_retraction || by_correction;
        memo.insert(id, v);
        v
    }
    let mut memo = BTreeMap::new();
    by_id.keys().copied().filter(|id| is_hidden(*id, &retracted_by, &superseded_by, 0, &mut memo)).collect()
}

#[derive(Debug, Clone, Copy)]
struct Listing {
    organ: Organ,
    state: LesionState,
    diameter: Option<f64>,
    role: Option<LesionRole>,
}

impl Listing {
    fn measurement(&self) -> Option<f64> {
        match self.state {
            LesionState::Absent => Some(0.0),
            LesionState::Present | LesionState::UnequivocalProgression => self.diameter,
            LesionState::NotEvaluated => None,
        }
    }
    fn measurable(&self) -> Option<f64> {
        if self.state != LesionState::Present {
            return None;
        }
        let d = self.diameter?;
        let min = if self.organ.is_nodal() { 15.0 } else { 10.0 };
        (d + EPS_MM >= min).then_some(d)
    }
}

/// Each lesion's latest listing that is not `not_evaluated` among `studies` (a lesion listed only
/// as `not_evaluated` keeps that state); the latest role given counts.
fn group(studies: &[(NaiveDate, Vec<(String, Listing)>)]) -> BTreeMap<String, Listing> {
    let mut counted: BTreeMap<String, Listing> = BTreeMap::new();
    let mut roles: BTreeMap<String, LesionRole> = BTreeMap::new();
    for (_, lesions) in studies {
        for (id, l) in lesions {
            if let Some(r) = l.role {
                roles.insert(id.clone(), r);
            }
            if l.state != LesionState::NotEvaluated || counted.get(id).is_none_or(|c| c.state == LesionState::NotEvaluated) {
                counted.insert(id.clone(), *l);
            }
        }
    }
    for (id, r) in roles {
        if let Some(c) = counted.get_mut(&id) {
            c.role = Some(r);
        }
    }
    counted
}

/// RECIST 1.1 §3.3.1: largest first, ≤ 2 per organ (all nodes one organ), ≤ 5, ties by id.
fn choose_targets(mut c: Vec<(String, Organ, f64)>) -> BTreeSet<String> {
    c.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
    let mut per_organ: BTreeMap<Organ, usize> = BTreeMap::new();
    let mut chosen = BTreeSet::new();
    for (id, organ, _) in c {
        if chosen.len() >= 5 {
            break;
        }
        let n = per_organ.entry(if organ.is_nodal() { Organ::RegionalLn } else { organ }).or_default();
        if *n < 2 {
            *n += 1;
            chosen.insert(id);
        }
    }
    chosen
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MAX)
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MIN)
    }
}

fn round_mm(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// S of `targets` at a group: (sum, all evaluated).
fn target_sum(targets: &BTreeSet<String>, at: &BTreeMap<String, Listing>) -> (Option<f64>, bool) {
    if targets.is_empty() {
        return (None, true);
    }
    let mut s = 0.0;
    let mut all = true;
    for id in targets {
        match at.get(id).filter(|l| l.state != LesionState::NotEvaluated).and_then(Listing::measurement) {
            Some(d) => s += d,
            None => all = false,
        }
    }
    (Some(round_mm(s)), all)
}

/// Builds the timeline of one patient in a view. `events` are the patient's stored events.
pub fn build(
    patient_id: &str,
    site_id: &str,
    events: &[RecordedEvent],
    projection: &PatientProjection,
    view: &View,
    cfg: &Config,
) -> Timeline {
    let known = known(events, view);
    let hidden = hidden(&known);
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

    // Counting imaging studies in canonical order.
    let mut imaging: Vec<&Event> = in_view
        .iter()
        .map(|r| &r.event)
        .filter(|e| !hidden.contains(&e.event_id) && matches!(e.payload, Payload::ImagingAssessed(_)))
        .collect();
    imaging.sort_by(|a, b| canonical_cmp(a, b));
    let studies: Vec<(NaiveDate, Vec<(String, Listing)>)> = imaging
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ImagingAssessed(img) => Some((
                e.occurred_on,
                img.lesions
                    .iter()
                    .map(|l| {
                        (l.lesion_id.clone(), Listing { organ: l.organ, state: l.state, diameter: l.diameter_mm, role: l.role })
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect();

    let labels = &projection.labels;
    let mut timepoints = Vec::new();
    let mut pd1_target_sum_mm = None;
    if let (Some(t0), Some(_)) = (labels.index_date, labels.baseline.as_ref()) {
        let from = add_days(t0, -cfg.baseline_window_days);
        let window: Vec<_> = studies.iter().filter(|(d, _)| *d >= from && *d <= t0).cloned().collect();
        let baseline = group(&window);
        let reference: BTreeMap<&String, &Listing> =
            baseline.iter().filter(|(_, l)| l.state != LesionState::Absent).collect();
        let marked: BTreeSet<String> =
            reference.iter().filter(|(_, l)| l.role == Some(LesionRole::Target)).map(|(id, _)| (*id).clone()).collect();
        let targets1 = if marked.is_empty() {
            choose_targets(
                reference
                    .iter()
                    .filter(|(_, l)| l.role != Some(LesionRole::NonTarget))
                    .filter_map(|(id, l)| l.measurable().map(|d| ((*id).clone(), l.organ, d)))
                    .collect(),
            )
        } else {
            marked
        };
        let pd1 = labels.pd1.as_ref().map(|p| p.date);
        let mut targets2: Option<BTreeSet<String>> = None;
        for tp in &projection.timepoints {
            let end = add_days(tp.date, cfg.timepoint_window_days);
            let members: Vec<_> = studies.iter().filter(|(d, _)| *d >= tp.date && *d <= end).cloned().collect();
            let at = group(&members);
            let targets = if tp.segment == 1 {
                &targets1
            } else {
                targets2.get_or_insert_with(|| {
                    // Segment 2 re-baselines at PD1: each lesion's latest listing up to the PD1
                    // time point; targets chosen by the RECIST rule among measurable ones.
                    let upto = pd1.map(|p| add_days(p, cfg.timepoint_window_days)).unwrap_or(tp.date);
                    let before: Vec<_> = studies.iter().filter(|(d, _)| *d <= upto).cloned().collect();
                    let state = group(&before);
                    choose_targets(state.iter().filter_map(|(id, l)| l.measurable().map(|d| (id.clone(), l.organ, d))).collect())
                })
            };
            let (sum, all) = target_sum(targets, &at);
            timepoints.push(TimelinePoint {
                date: tp.date,
                segment: tp.segment,
                response: tp.response.as_str().to_owned(),
                target_sum_mm: sum,
                all_targets_evaluated: all,
            });
            if Some(tp.date) == pd1 && tp.segment == 1 {
                let upto = add_days(tp.date, cfg.timepoint_window_days);
                let before: Vec<_> = studies.iter().filter(|(d, _)| *d <= upto).cloned().collect();
                let state = group(&before);
                let t2 = choose_targets(
                    state.iter().filter_map(|(id, l)| l.measurable().map(|d| (id.clone(), l.organ, d))).collect(),
                );
                pd1_target_sum_mm = target_sum(&t2, &at).0;
            }
        }
    }
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
        pd1_target_sum_mm,
        timepoints,
        labels: serde_json::to_value(labels).unwrap_or(Value::Null),
        findings: serde_json::to_value(&projection.findings).unwrap_or(Value::Null),
    }
}

/// The baseline target sum as recomputed here (for the consistency test with the labels).
pub fn recomputed_baseline_sum(events: &[RecordedEvent], projection: &PatientProjection, view: &View, cfg: &Config) -> Option<f64> {
    let labels = &projection.labels;
    let t0 = labels.index_date?;
    labels.baseline.as_ref()?;
    let known = known(events, view);
    let hidden = hidden(&known);
    let mut imaging: Vec<&Event> = known
        .iter()
        .map(|r| &r.event)
        .filter(|e| e.occurred_on <= view.as_of && !hidden.contains(&e.event_id))
        .filter(|e| matches!(e.payload, Payload::ImagingAssessed(_)))
        .collect();
    imaging.sort_by(|a, b| canonical_cmp(a, b));
    let from = add_days(t0, -cfg.baseline_window_days);
    let window: Vec<(NaiveDate, Vec<(String, Listing)>)> = imaging
        .iter()
        .filter(|e| e.occurred_on >= from && e.occurred_on <= t0)
        .filter_map(|e| match &e.payload {
            Payload::ImagingAssessed(img) => Some((
                e.occurred_on,
                img.lesions
                    .iter()
                    .map(|l| {
                        (l.lesion_id.clone(), Listing { organ: l.organ, state: l.state, diameter: l.diameter_mm, role: l.role })
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    let baseline = group(&window);
    let reference: BTreeMap<&String, &Listing> = baseline.iter().filter(|(_, l)| l.state != LesionState::Absent).collect();
    let marked: BTreeSet<String> =
        reference.iter().filter(|(_, l)| l.role == Some(LesionRole::Target)).map(|(id, _)| (*id).clone()).collect();
    let targets = if marked.is_empty() {
        choose_targets(
            reference
                .iter()
                .filter(|(_, l)| l.role != Some(LesionRole::NonTarget))
                .filter_map(|(id, l)| l.measurable().map(|d| ((*id).clone(), l.organ, d)))
                .collect(),
        )
    } else {
        marked
    };
    if targets.is_empty() {
        return None;
    }
    // S0 uses measured sizes at baseline (absent is not in the reference set).
    let s: f64 = targets.iter().filter_map(|id| baseline.get(id)).filter_map(|l| match l.state {
        LesionState::Present | LesionState::UnequivocalProgression => l.diameter,
        _ => None,
    }).sum();
    Some(round_mm(s))
}

/// The first `patient.enrolled` in canonical order among the patient's events that count in the
/// view; when it disagrees with the labels' `diagnosis_date`, the first that matches it (so the
/// report's enrolment facts are those of the labels). As `registry report` reads it.
pub fn enrollment_in_view(
    events: &[RecordedEvent],
    view: &View,
    diagnosis_date: Option<NaiveDate>,
) -> Option<registry_domain::events::Enrollment> {
    let known = known(events, view);
    let hidden = hidden(&known);
    let mut candidates: Vec<&Event> = known
        .iter()
        .map(|r| &r.event)
        .filter(|e| e.occurred_on <= view.as_of && !hidden.contains(&e.event_id))
        .filter(|e| matches!(e.payload, Payload::PatientEnrolled(_)))
        .collect();
    candidates.sort_by(|a, b| canonical_cmp(a, b));
    let enrolment = |e: &&Event| match &e.payload {
        Payload::PatientEnrolled(p) => Some(p.clone()),
        _ => None,
    };
    let first = candidates.first().and_then(enrolment);
    match (&first, diagnosis_date) {
        (Some(f), Some(d)) if f.diagnosis_date != d => {
            candidates.iter().filter_map(enrolment).find(|p| p.diagnosis_date == d).or(first)
        }
        _ => first,
    }
}
