//! Views and "Which events count" (`domain.md`): which of a patient's recorded events are in a
//! view (`as_of`, `known_at`), which are hidden by retractions and corrections, and the canonical
//! order in which the rules read them.
//!
//! Input may be in any order, with duplicate deliveries; the result depends only on the set of
//! events in view.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::events::{Event, EventType, PatientId, Payload};
use crate::findings::{Finding, FindingKind};

/// An event as stored: the event, its position in the log and its arrival time in the store
/// (what `known_at` compares against).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event: Event,
    pub seq: u64,
    pub received_at: DateTime<Utc>,
}

/// A view: the clinical cut-off (`as_of`, also the view date of the clocks) and the knowledge
/// cut-off (`known_at`; `None` = everything received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct View {
    pub as_of: NaiveDate,
    pub known_at: Option<DateTime<Utc>>,
}

impl View {
    /// Everything received, clinical cut-off `as_of`.
    pub fn as_of(as_of: NaiveDate) -> View {
        View { as_of, known_at: None }
    }
}

/// The site a patient belongs to: the `site_id` of the patient's first stored event (lowest
/// seq). Only the patient's own events count: a list read for a refold also holds other
/// patients' events that its retractions or corrections name (see [`events_by_patient`]), and
/// their site must never become this patient's — the API grants access by it.
pub fn patient_site<'a>(patient_id: &str, events: &'a [RecordedEvent]) -> Option<&'a str> {
    events
        .iter()
        .filter(|e| e.event.patient_id.as_str() == patient_id)
        .min_by_key(|e| e.seq)
        .map(|e| e.event.site_id.as_str())
}

/// Every patient's events out of a whole log (any order), sorted by patient id, each patient's in
/// the order given, plus the other patients' events that its retractions and corrections name —
/// the events [`crate::projection::project_patient`] needs to see such a link and ignore it with a
/// finding (what the projector's per-patient read gathers). For projecting every patient of a
/// view in one pass over the log.
pub fn events_by_patient(events: Vec<RecordedEvent>) -> Vec<(PatientId, Vec<RecordedEvent>)> {
    // Hash maps (not ordered ones) for the cohort-sized indexes: the result's order is fixed below
    // by sorting the patient ids, each patient's own events keep the input order and its linked
    // events are sorted by position, exactly as the ordered maps gave them.
    let mut by_id: HashMap<Uuid, usize> = HashMap::with_capacity(events.len());
    for (i, r) in events.iter().enumerate() {
        by_id.insert(r.event.event_id, i);
    }
    // patient id -> (own events, other patients' events its links name), as positions.
    type Group = (Vec<usize>, Vec<usize>);
    let mut groups: HashMap<&str, Group> = HashMap::new();
    for (i, r) in events.iter().enumerate() {
        let e = &r.event;
        let g = groups.entry(e.patient_id.as_str()).or_default();
        g.0.push(i);
        let target = match &e.payload {
            Payload::EventRetracted(x) => Some(x.target_event_id),
            _ => e.supersedes,
        };
        if let Some(&j) = target.and_then(|t| by_id.get(&t)) {
            if events[j].event.patient_id != e.patient_id {
                g.1.push(j);
            }
        }
    }
    drop(by_id);
    let mut groups: Vec<(&str, Group)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let layout: Vec<(Vec<usize>, Vec<RecordedEvent>)> = groups
        .into_iter()
        .map(|(_, (own, mut linked))| {
            linked.sort_unstable();
            linked.dedup();
            (own, linked.into_iter().map(|j| events[j].clone()).collect())
        })
        .collect();
    let mut slots: Vec<Option<RecordedEvent>> = events.into_iter().map(Some).collect();
    layout
        .into_iter()
        .filter_map(|(own, linked)| {
            let list: Vec<RecordedEvent> = own.iter().filter_map(|&i| slots[i].take()).chain(linked).collect();
            Some((list.first()?.event.patient_id.clone(), list))
        })
        .collect()
}

/// Canonical order of a patient's events (`domain.md`, preamble):
/// (occurred_on, type rank, recorded_at as an instant, event_id).
pub fn canonical_cmp(a: &Event, b: &Event) -> Ordering {
    a.occurred_on
        .cmp(&b.occurred_on)
        .then_with(|| a.event_type().rank().cmp(&b.event_type().rank()))
        .then_with(|| a.recorded_at.cmp(&b.recorded_at))
        .then_with(|| a.event_id.cmp(&b.event_id))
}

/// The events of one patient that count in a view, in canonical order, plus the findings that
/// deciding so raised.
#[derive(Debug, Clone)]
pub(crate) struct Counted<'a> {
    /// Clinical events (no retractions) that count, canonical order. At most one enrolment and one
    /// death (the first in canonical order). Borrowed from the input: nothing is copied.
    pub(crate) events: Vec<&'a Event>,
    pub(crate) findings: Vec<Finding>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Retracts,
    Supersedes,
}

/// Steps 1 and 2 of "Which events count": the patient's known events (one version per event_id)
/// and which of them a counting retraction or correction hides.
struct Linked<'a> {
    mine: Vec<&'a Event>,
    hidden: BTreeSet<Uuid>,
    findings: Vec<Finding>,
}

/// The event ids of `patient_id` hidden in the view by a retraction or correction that counts
/// (`domain.md`, "Which events count"): what the projection leaves out, for timelines that show
/// every event with whether it counts. Events not known by `known_at` are not in the set.
pub fn hidden_events(patient_id: &PatientId, events: &[RecordedEvent], view: &View) -> BTreeSet<Uuid> {
    linked(patient_id, events, view).hidden
}

fn linked<'a>(patient_id: &PatientId, events: &'a [RecordedEvent], view: &View) -> Linked<'a> {
    // 1. Known events, one version per event_id: the one stored first (lowest seq) stands.
    let mut by_id: BTreeMap<Uuid, &RecordedEvent> = BTreeMap::new();
    for r in events {
        if view.known_at.is_some_and(|k| r.received_at > k) {
            continue;
        }
        match by_id.get(&r.event.event_id) {
            Some(old) if (old.seq, old.received_at) <= (r.seq, r.received_at) => {}
            _ => {
                by_id.insert(r.event.event_id, r);
            }
        }
    }
    let mine: Vec<&Event> = by_id.values().map(|r| &r.event).filter(|e| &e.patient_id == patient_id).collect();

    let mut findings = Vec::new();
    // 2. Links among this patient's events. Edges: hider -> hidden.
    let mut edges: Vec<(Uuid, Uuid, LinkKind)> = Vec::new();
    for e in &mine {
        let mut links: Vec<(Uuid, LinkKind)> = Vec::new();
        if let Payload::EventRetracted(r) = &e.payload {
            links.push((r.target_event_id, LinkKind::Retracts));
        }
        if let Some(s) = e.supersedes {
            links.push((s, LinkKind::Supersedes));
        }
        for (target, kind) in links {
            let what = if kind == LinkKind::Retracts { "retraction" } else { "correction" };
            let Some(t) = by_id.get(&target).map(|r| &r.event) else {
                continue; // target not (yet) known: kept, applied when it comes
            };
            if &t.patient_id != patient_id {
                findings.push(Finding::new(
                    FindingKind::CrossPatientLink,
                    e.event_id,
                    format!("{what} names event {target} of another patient; ignored"),
                ));
            } else if target == e.event_id {
                findings.push(Finding::new(
                    FindingKind::InvalidLink,
                    e.event_id,
                    format!("{what} names itself; ignored"),
                ));
            } else if kind == LinkKind::Supersedes && t.event_type() != e.event_type() {
                findings.push(Finding::new(
                    FindingKind::InvalidLink,
                    e.event_id,
                    format!("correction of a {} by a {}; ignored", t.event_type().as_str(), e.event_type().as_str()),
                ));
            } else {
                edges.push((e.event_id, target, kind));
            }
        }
    }
    // Links that lie on a cycle have no well-defined meaning: ignore them all, with a finding.
    let edges = drop_cycles(edges, &mut findings);
    let hidden = hidden_set(&mine, &edges);
    Linked { mine, hidden, findings }
}

/// Applies "Which events count" for `patient_id`. `None` when the patient is not listed in the view
/// (no counted non-retraction event).
pub(crate) fn counted_events<'a>(patient_id: &PatientId, events: &'a [RecordedEvent], view: &View) -> Option<Counted<'a>> {
    let Linked { mine, hidden, mut findings } = linked(patient_id, events, view);

    // 3. Clinical events in view.
    let mut clinical: Vec<&Event> = mine
        .iter()
        .filter(|e| !hidden.contains(&e.event_id))
        .filter(|e| e.event_type() != EventType::EventRetracted)
        .filter(|e| e.occurred_on <= view.as_of)
        .copied()
        .collect();
    if clinical.is_empty() {
        return None;
    }
    clinical.sort_by(|a, b| canonical_cmp(a, b));

    // 4. Only the first enrolment and the earliest death count.
    let mut seen_enrolment = false;
    let mut seen_death: Option<NaiveDate> = None;
    clinical.retain(|e| match e.event_type() {
        EventType::PatientEnrolled => {
            if seen_enrolment {
                findings.push(Finding::new(
                    FindingKind::SecondEnrolment,
                    e.event_id,
                    format!("second patient.enrolled dated {}; the first counts", e.occurred_on),
                ));
                false
            } else {
                seen_enrolment = true;
                true
            }
        }
        EventType::DeathRecorded => {
            if let Some(first) = seen_death {
                findings.push(Finding::new(
                    FindingKind::SeveralDeaths,
                    e.event_id,
                    format!("another death recorded on {}; the earliest ({first}) counts", e.occurred_on),
                ));
                false
            } else {
                seen_death = Some(e.occurred_on);
                true
            }
        }
        _ => true,
    });
    // Link findings only for linking events that themselves count (an ignored event has no effect).
    findings.retain(|f| {
        !hidden.contains(&f.event_id) || !matches!(f.kind, FindingKind::CrossPatientLink | FindingKind::InvalidLink)
    });
    Some(Counted { events: clinical, findings })
}

/// Removes every link edge that lies on a cycle of links (its target reaches its source).
fn drop_cycles(edges: Vec<(Uuid, Uuid, LinkKind)>, findings: &mut Vec<Finding>) -> Vec<(Uuid, Uuid, LinkKind)> {
    let mut adj: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (s, t, _) in &edges {
        adj.entry(*s).or_default().push(*t);
    }
    let reaches = |from: Uuid, to: Uuid| -> bool {
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                if let Some(next) = adj.get(&n) {
                    stack.extend(next.iter().copied());
                }
            }
        }
        false
    };
    let mut kept = Vec::with_capacity(edges.len());
    for (s, t, k) in &edges {
        if reaches(*t, *s) {
            findings.push(Finding::new(
                FindingKind::InvalidLink,
                *s,
                format!("link to {t} is part of a cycle of links; ignored"),
            ));
        } else {
            kept.push((*s, *t, *k));
        }
    }
    kept
}

/// The hidden events, given an acyclic set of links.
///
/// hidden(e) = some counting retraction names e, or chain(e);
/// chain(e) = some correction c supersedes e with (c counts or chain(c)) — a correction hides
/// every earlier version it reaches through `supersedes` links, whether or not those versions count.
fn hidden_set(mine: &[&Event], edges: &[(Uuid, Uuid, LinkKind)]) -> BTreeSet<Uuid> {
    // Most patients have no link at all: nothing is hidden.
    if edges.is_empty() {
        return BTreeSet::new();
    }
    let mut hiders: BTreeMap<Uuid, Vec<(Uuid, LinkKind)>> = BTreeMap::new();
    let mut indeg: BTreeMap<Uuid, usize> = mine.iter().map(|e| (e.event_id, 0)).collect();
    for (s, t, k) in edges {
        hiders.entry(*t).or_default().push((*s, *k));
        *indeg.entry(*t).or_default() += 1;
        indeg.entry(*s).or_default();
    }
    let mut succ: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (s, t, _) in edges {
        succ.entry(*s).or_default().push(*t);
    }
    // Kahn's algorithm: a node is decided once all its hiders are.
    let mut ready: Vec<Uuid> = indeg.iter().filter(|(_, d)| **d == 0).map(|(id, _)| *id).collect();
    let mut hidden: BTreeSet<Uuid> = BTreeSet::new();
    let mut chain: BTreeSet<Uuid> = BTreeSet::new();
    while let Some(n) = ready.pop() {
        let mut is_chain = false;
        let mut is_retracted = false;
        for (h, k) in hiders.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            let h_counts = !hidden.contains(h);
            match k {
                LinkKind::Retracts => is_retracted |= h_counts,
                LinkKind::Supersedes => is_chain |= h_counts || chain.contains(h),
            }
        }
        if is_chain {
            chain.insert(n);
        }
        if is_chain || is_retracted {
            hidden.insert(n);
        }
        for t in succ.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(d) = indeg.get_mut(t) {
                *d -= 1;
                if *d == 0 {
                    ready.push(*t);
                }
            }
        }
    }
    hidden
}
