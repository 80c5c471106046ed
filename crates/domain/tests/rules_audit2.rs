//! Second independent audit of domain.md, focused on "Which events count", "Status and index date",
//! PD2, radiotherapy / treatment flags, alerts, views and the labels JSON shape.
//! Every expectation was worked out by hand from /work/shared/spec/domain.md ("dm:N") and
//! /work/shared/spec/interfaces.md ("if:N") before the rule's code was read.
#![allow(clippy::type_complexity)]

mod audit_support;
mod rules_support;

use chrono::{DateTime, TimeZone, Utc};
use registry_domain::alerts::{alerts_between, followup_overdue, Alert, AlertKind};
use registry_domain::config::Config;
use registry_domain::events::{Agent, FollowupStatus, PatientId, RtModality, RtRegion};
use registry_domain::findings::FindingKind;
use registry_domain::labels::{
    BrainAtProgression as Br, ClockReason as R, Extent, Labels, Pattern, Response, SalvageCandidate as Sc, Status,
};
use registry_domain::projection::{project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use audit_support::*;
use rules_support::*;

// ---------------------------------------------------------------- helpers (this file only)

/// Arrival instant of the i-th event of `Tl::recorded()` (2030-01-01T00:00:00Z + i s).
fn at(i: i64) -> Option<DateTime<Utc>> {
    Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("audit timeline") + chrono::Duration::seconds(i))
}
fn view_known(tl: &Tl, as_of: &str, i: i64) -> Option<PatientProjection> {
    tl.project_view(View { as_of: d(as_of), known_at: at(i) })
}
/// Moves event `from` to position `to` in the arrival order (ids unchanged).
fn move_event(mut tl: Tl, from: usize, to: usize) -> Tl {
    let e = tl.events.remove(from);
    tl.events.insert(to, e);
    tl
}
/// Several patients' events stored in one log, in the order given.
fn merge(tls: &[&Tl]) -> Vec<RecordedEvent> {
    let base = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("audit timeline");
    tls.iter()
        .flat_map(|t| t.events.iter().cloned())
        .enumerate()
        .map(|(i, e)| RecordedEvent { event: e, seq: i as u64 + 1, received_at: base + chrono::Duration::seconds(i as i64) })
        .collect()
}
fn project_in(pid: &str, log: &[RecordedEvent], as_of: &str) -> Option<PatientProjection> {
    project_patient(
        &PatientId::parse(pid).expect("audit timeline"),
        log,
        &View { as_of: d(as_of), known_at: None },
        &Config::default(),
    )
}
fn kinds(p: &PatientProjection) -> Vec<FindingKind> {
    p.findings.iter().map(|f| f.kind).collect()
}
fn alert_kinds(a: &[Alert]) -> Vec<AlertKind> {
    a.iter().map(|x| x.kind).collect()
}
fn json(l: &Labels) -> serde_json::Value {
    serde_json::from_str(&l.to_json_line()).expect("labels json")
}

// ================================================================ Which events count (dm:20-35)

// dm:21-25 "a correction of a correction hides both earlier versions"; "retracting a correction
// brings the original back"; dm:30 "A correction hides every earlier version it reaches through
// `supersedes` links". Baseline P1 40 (S0 40). e1 04-24 P1 60; c1 (corrects e1) 04-22 P1 70;
// c2 (corrects c1) 04-20 P1 45. Dates run backwards so that a wrongly visible older version would be
// the latest listing of the 04-20..04-27 group.
// (a) all known: only c2 counts → one time point 04-20, S 45 < 48 and > 28 → SD, no PD1.
// (b) c2 retracted: c1 comes back (and still hides e1) → time point 04-22, 70 ≥ 48, +30 → PD1 04-22.
// (c) c1 retracted instead: c2 still reaches e1 through c1 (dm:30) → SD at 04-20, no PD1.
#[test]
fn a2_correction_of_a_correction_and_retracting_either_version() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-24", vec![p1(60.0)]);
    let e1 = tl.last_id();
    let tl = tl.scan("2015-04-22", vec![p1(70.0)]).superseding(e1);
    let c1 = tl.last_id();
    let tl = tl.scan("2015-04-20", vec![p1(45.0)]).superseding(c1);
    let c2 = tl.last_id();
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "SD")], "(a)");
    assert!(tl.labels(VIEW).pd1.is_none());
    let b = tl.clone().retract("2015-06-01", c2);
    assert_eq!(resp(&b, VIEW), vec![tp("2015-04-22", 1, "PD")], "(b)");
    assert_eq!(b.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-04-22")));
    let c = tl.retract("2015-06-01", c1);
    assert_eq!(resp(&c, VIEW), vec![tp("2015-04-20", 1, "SD")], "(c)");
}

// dm:23-25 "retracting a retraction brings its target back". e1 PD scan 04-20 (40 → 60); scan 06-20
// P1 40. r1 retracts e1, r2 retracts r1, r3 retracts r2. Arrivals: idx 5 r1, 6 r2, 7 r3.
// known at 4: PD1 04-20. at 5 (r1): e1 hidden → only 06-20 (SD, 110 days ≥ 42) → no PD1, BOR SD.
// at 6 (r2): r1 ignored → PD1 04-20. at 7 (r3): r2 ignored → r1 acts → no PD1.
#[test]
fn a2_retraction_of_a_retraction_of_a_retraction() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let e1 = tl.last_id();
    let tl = tl.scan("2015-06-20", vec![p1(40.0)]).retract("2015-07-01", e1);
    let r1 = tl.last_id();
    let tl = tl.retract("2015-07-02", r1);
    let r2 = tl.last_id();
    let tl = tl.retract("2015-07-03", r2);
    let pd_at = |i| view_known(&tl, VIEW, i).expect("audit timeline").labels.pd1.map(|p| p.date.to_string());
    assert_eq!(pd_at(4), Some("2015-04-20".into()));
    assert_eq!(pd_at(5), None);
    assert_eq!(pd_at(6), Some("2015-04-20".into()));
    assert_eq!(pd_at(7), None);
    let l = view_known(&tl, VIEW, 7).expect("audit timeline").labels;
    assert_eq!(l.best_response, Some(Response::SD));
}

// events.md "A retraction or a correction may arrive before its target: keep it, and apply it when
// the target comes"; dm:26-27 "only known_at decides whether they are in view".
// (a) Retraction R (dated 03-01, before its target's date) arrives at idx 3, target X (PD scan 04-20)
// at idx 5, a scan 06-20 (P1 40) at idx 4. known at 3/4: X unknown → no PD1; at 5: X hidden → no PD1,
// time point 06-20 SD. Control without R: PD1 04-20.
// (b) Correction C (04-18, P1 45) of Y (04-20, P1 60) arrives before Y. Y hidden → the group 04-18
// has only C → SD, no PD1 (if Y were visible it would be the latest listing → PD).
#[test]
fn a2_retraction_and_correction_arriving_before_their_targets() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let x = tl.last_id();
    let control = tl.clone().scan("2015-06-20", vec![p1(40.0)]);
    assert_eq!(control.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-04-20")));
    let tl = control.retract("2015-03-01", x); // idx 0..5: enr, crizo, bl, X, 06-20, R
    let tl = move_event(tl, 5, 3); // enr, crizo, bl, R, X, 06-20
    let tl = move_event(tl, 5, 4); // enr, crizo, bl, R, 06-20, X
    assert_eq!(tl.events[5].event_id, x);
    for i in [3, 4, 5] {
        let p = view_known(&tl, VIEW, i).expect("audit timeline");
        assert!(p.labels.pd1.is_none(), "known at {i}");
    }
    assert_eq!(responses(&view_known(&tl, VIEW, 5).expect("audit timeline")), vec![tp("2015-06-20", 1, "SD")]);

    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let y = tl.last_id();
    let tl = tl.scan("2015-04-18", vec![p1(45.0)]).superseding(y);
    let tl = move_event(tl, 4, 3); // C arrives before Y
    assert_eq!(tl.events[4].event_id, y);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-18", 1, "SD")]);
    assert!(tl.labels(VIEW).pd1.is_none());
}

// dm:21-22 "Both act only within the same patient ...; any other link is ignored and raises a
// data-quality finding"; dm:34 "Patients listed: every patient with at least one event in view that
// is not a retraction and not hidden". P002 has PD1 04-20 (X). P001 retracts X and sends a scan
// 04-20 (P1 60) that "supersedes" X: both links ignored; the scan is an ordinary P001 event → P001 PD1
// 04-20 (40 → 60); P002 keeps PD1 04-20. P003 has only a retraction of X → not listed.
#[test]
fn a2_cross_patient_links_are_ignored_flagged_and_do_not_list_a_patient() {
    let p2 = Tl::for_patient("P002")
        .enrolled_dx("2015-01-10", "2014-12-01")
        .crizotinib(T0)
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)]);
    let x = p2.last_id();
    let p1t = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .retract("2015-05-01", x)
        .scan("2015-04-20", vec![p1(60.0)])
        .superseding(x);
    let p3 = Tl::for_patient("P003").retract("2015-05-01", x);
    let log = merge(&[&p2, &p1t, &p3]);
    let a = project_in("P001", &log, VIEW).expect("P001 listed");
    assert_eq!(a.labels.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    let n = kinds(&a).iter().filter(|k| **k == FindingKind::CrossPatientLink).count();
    assert!(n >= 1, "{:?}", a.findings);
    let b = project_in("P002", &log, VIEW).expect("P002 listed");
    assert_eq!(b.labels.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    assert!(project_in("P003", &log, VIEW).is_none(), "a patient with only a retraction is not listed");
}

// dm:21-22 "(a correction only on an event of the same type); any other link is ignored and raises
// a data-quality finding". A follow-up that "supersedes" the PD scan: link ignored → PD1 04-20
// stands; the follow-up is still an ordinary event → OS censored 2016-01-05 (400 days).
#[test]
fn a2_correction_of_another_type_is_ignored_but_the_event_counts() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let x = tl.last_id();
    let tl = tl.followup("2016-01-05", FollowupStatus::Alive).superseding(x);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    assert_eq!(ck(&p.labels.os), clock("2014-12-01", "2016-01-05", 400, false, R::CensoredLastKnownAlive));
    assert!(kinds(&p).contains(&FindingKind::InvalidLink), "{:?}", p.findings);
}

// dm:29-31 "A second `patient.enrolled` (not a correction): the first in canonical order counts;
// data-quality finding. ... `recorded_at` compares as an instant."
// (a) enrolled 2015-01-10 (dx 2014-12-01) arrives first, enrolled 2014-12-20 (dx 2014-06-01) later:
// canonical order is by occurred_on → the later arrival counts: dx 2014-06-01; second_enrolment.
// (b) a correction (supersedes) dated later: it replaces the first, no finding: dx 2014-11-01.
// (c) same occurred_on; the second is recorded at 13:00+02:00 = 11:00Z, before 12:00Z → it counts.
#[test]
fn a2_second_enrolment_first_in_canonical_order_counts() {
    let a = base().scan("2015-02-20", vec![p1(40.0)]).enrolled_dx("2014-12-20", "2014-06-01");
    let p = a.project(VIEW);
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-06-01")));
    assert_eq!(p.labels.os.as_ref().map(|c| c.start), Some(d("2014-06-01")));
    assert!(kinds(&p).contains(&FindingKind::SecondEnrolment), "{:?}", p.findings);

    let b = base();
    let first = b.id_at(0);
    let b = b.enrolled_dx("2015-01-15", "2014-11-01").superseding(first);
    let p = b.project(VIEW);
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-11-01")));
    assert!(!kinds(&p).contains(&FindingKind::SecondEnrolment), "{:?}", p.findings);

    let c = recorded_at(base().enrolled_dx("2015-01-10", "2014-10-01"), "2015-01-10T13:00:00+02:00");
    let p = c.project(VIEW);
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-10-01")));
    assert!(kinds(&p).contains(&FindingKind::SecondEnrolment));
}

// dm:33 "Several deaths: the earliest counts; data-quality finding"; dm:165 label_revised for a
// changed clock; dm:167-168 data_quality "several deaths".
// Death 2016-05-01 recorded first, then death 2016-03-01. OS: 2014-12-01 → 2016-03-01 = 365 + 91
// (2016 is a leap year) = 456, event. PFS1 (no PD): T0 → 2016-03-01 = 365 days, death.
// Before the second death: PFS1 426 days, OS 517. As of 2016-04-01 only one death in view → no finding.
// Two deaths on the same day: still "several deaths".
#[test]
fn a2_several_deaths_earliest_counts_with_finding_and_alerts() {
    let t0 = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0)]).death("2016-05-01");
    let before = t0.project(VIEW);
    assert_eq!(ck(&before.labels.pfs1), clock(T0, "2016-05-01", 426, true, R::Death));
    let t1 = t0.death("2016-03-01");
    let after = t1.project(VIEW);
    assert_eq!(after.labels.death_date, Some(d("2016-03-01")));
    assert_eq!(ck(&after.labels.os), clock("2014-12-01", "2016-03-01", 456, true, R::Death));
    assert_eq!(ck(&after.labels.pfs1), clock(T0, "2016-03-01", 365, true, R::Death));
    assert!(kinds(&after).contains(&FindingKind::SeveralDeaths));
    let a = alerts_between(Some(&before), &after, Some(t1.last_id()));
    let ak = alert_kinds(&a);
    assert!(ak.contains(&AlertKind::LabelRevised), "{ak:?}");
    assert!(ak.contains(&AlertKind::DataQuality), "{ak:?}");
    let early = t1.project("2016-04-01");
    assert_eq!(early.labels.death_date, Some(d("2016-03-01")));
    assert!(!kinds(&early).contains(&FindingKind::SeveralDeaths), "{:?}", early.findings);
    let same = base().death("2016-03-01").death("2016-03-01").project(VIEW);
    assert_eq!(same.labels.death_date, Some(d("2016-03-01")));
    assert!(kinds(&same).contains(&FindingKind::SeveralDeaths));
}

// dm:31-32 "Two different events with one event_id: the one stored first stands"; events.md "Same id
// + same content = duplicate (stored once)". PD scan X (40 → 60). A second copy of X → same bytes.
// A different event with X's id (P1 45) stored after X → X stands (PD1); stored before X → it stands
// (45: SD, no PD1).
#[test]
fn a2_duplicates_and_event_id_conflicts() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let single = tl.labels(VIEW).to_json_line();
    let mut dup = tl.clone();
    dup.events.push(tl.events[3].clone());
    assert_eq!(dup.labels(VIEW).to_json_line(), single);
    let mut other = tl.events[3].clone();
    if let registry_domain::events::Payload::ImagingAssessed(ref mut im) = other.payload {
        im.lesions[0].diameter_mm = Some(45.0);
    }
    let mut later = tl.clone();
    later.events.push(other.clone());
    assert_eq!(later.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-04-20")));
    let mut first = tl.clone();
    first.events.insert(3, other);
    let l = first.labels(VIEW);
    assert!(l.pd1.is_none(), "the copy stored first stands");
    assert_eq!(resp(&first, VIEW), vec![tp("2015-04-20", 1, "SD")]);
}

// dm:26-27 "they act in every `as_of` view, whatever their own occurred_on"; dm:34 patients listed.
// Retraction dated 2016-06-01 of the PD scan: as of 2015-05-01 (before the retraction's date) PD1 is
// already gone. A patient whose enrolment is retracted and has nothing else: not listed. A patient
// whose only event is after as_of: not listed.
#[test]
fn a2_retraction_acts_before_its_own_date_and_patients_listed() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let x = tl.last_id();
    let tl = tl.retract("2016-06-01", x);
    assert!(tl.labels("2015-05-01").pd1.is_none());
    let t = Tl::for_patient("P004").enrolled("2015-01-10");
    let e = t.last_id();
    let t = t.retract("2015-02-01", e);
    assert!(t.project_view(View { as_of: d(VIEW), known_at: None }).is_none());
    let t = Tl::for_patient("P005").enrolled("2019-01-10");
    assert!(t.project_view(View { as_of: d(VIEW), known_at: None }).is_none());
    assert!(t.project_view(View { as_of: d("2019-01-10"), known_at: None }).is_some());
}

// ================================================================ Status and index date (dm:36-43)

// dm:37-38 "`incomplete`: no `patient.enrolled` in view. Labels that need only treatment, imaging and
// death are still computed; `diagnosis_date` and `os` are null." if:48 "absent facts are null, never
// omitted". Crizotinib T0, 40 → 60 at 04-20, death 2016-01-01: PD1 04-20, PFS1 49 days progression,
// PFS2 04-20 → 2016-01-01 = 256 days death, CBPD true (open course, death after 05-11).
// Retracting the enrolment of an indexed patient makes it incomplete too.
#[test]
fn a2_incomplete_patient_still_gets_treatment_imaging_and_death_labels() {
    let tl = Tl::new()
        .crizotinib(T0)
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .death("2016-01-01");
    let l = tl.labels(VIEW);
    assert_eq!(l.status, Status::Incomplete);
    assert_eq!(l.index_date, Some(d(T0)));
    assert!(l.diagnosis_date.is_none() && l.os.is_none());
    assert_eq!(l.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    assert_eq!(ck(&l.pfs1), clock(T0, "2015-04-20", 49, true, R::Progression));
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2016-01-01", 256, true, R::Death));
    assert_eq!(l.cbpd, Some(true));
    assert_eq!(l.death_date, Some(d("2016-01-01")));
    let j = json(&l);
    assert_eq!(j["status"], "incomplete");
    assert!(j.get("diagnosis_date").is_some_and(|v| v.is_null()), "{j}");
    assert!(j.get("os").is_some_and(|v| v.is_null()), "{j}");

    let tl = base().scan("2015-02-20", vec![p1(40.0)]);
    let en = tl.id_at(0);
    let l = tl.retract("2015-06-01", en).labels(VIEW);
    assert_eq!(l.status, Status::Incomplete);
    assert!(l.diagnosis_date.is_none() && l.os.is_none());
    assert!(l.baseline.is_some());
}

// dm:39-41 "None: `not_indexed` (when enrolled), and every label that needs T0 is null: baseline,
// responses, PD1, PD2, PFS1, PFS2, CBPD, next therapy, `rt.prior*` (with `prior_brain_modalities:
// []`)"; dm:145 salvage "Null without PD1 (modalities [])"; dm:146 any_rt "always a boolean";
// if:33-49 the exact shape. Alectinib only, SRS 2015-01-01, death 2016-01-01: OS 396 days, death.
#[test]
fn a2_not_indexed_labels_exact_json() {
    let tl = Tl::new()
        .enrolled_dx("2015-01-10", "2014-12-01")
        .rt("2015-01-01", RtModality::Srs, RtRegion::Brain)
        .start(T0, Agent::Alectinib, "alec")
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(80.0)])
        .death("2016-01-01");
    let expected = r#"{"patient_id":"P001","status":"not_indexed","index_date":null,"diagnosis_date":"2014-12-01","baseline":null,"best_response":null,"objective_response":null,"pd1":null,"pd2":null,"pfs1":null,"pfs2":null,"os":{"start":"2014-12-01","end":"2016-01-01","days":396,"event":true,"reason":"death"},"rt":{"prior":null,"prior_brain":null,"prior_brain_modalities":[],"prior_extracranial":null,"salvage":null,"salvage_modalities":[],"any":true},"cbpd":null,"next_therapy":null,"death_date":"2016-01-01"}"#;
    let got = tl.labels(VIEW).to_json_line();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&got).expect("audit timeline"), serde_json::from_str::<serde_json::Value>(expected).expect("audit timeline"));
    assert_eq!(got, expected, "key order as in interfaces.md");
}

// dm:39 "Index date T0: the earliest `treatment.started` with agent crizotinib". A second crizotinib
// course dated 2015-02-10 arrives after the 03-02 one → T0 02-10 (an earlier alectinib start does not
// count). Baseline window [2014-12-30, 02-10] → scan_date 02-05; the 02-20 study is a time point
// (SD 10 days after T0 → not counted) → BOR NE. Retract the 02-10 start → T0 03-02, both studies in the
// window, scan_date 02-20, no time point → BOR null. As of 2015-02-09 no crizotinib in view →
// not_indexed.
#[test]
fn a2_index_date_is_the_earliest_crizotinib_start_in_view() {
    let tl = base()
        .start("2015-02-01", Agent::Alectinib, "alec")
        .scan("2015-02-05", vec![p1(40.0)])
        .scan("2015-02-20", vec![p1(40.0)])
        .start("2015-02-10", Agent::Crizotinib, "c0");
    let c0 = tl.last_id();
    let l = tl.labels(VIEW);
    assert_eq!(l.index_date, Some(d("2015-02-10")));
    assert_eq!(l.baseline.as_ref().map(|b| b.scan_date), Some(d("2015-02-05")));
    assert_eq!(l.best_response, Some(Response::NE));
    let l = tl.clone().retract("2015-06-01", c0).labels(VIEW);
    assert_eq!(l.index_date, Some(d(T0)));
    assert_eq!(l.baseline.as_ref().map(|b| b.scan_date), Some(d("2015-02-20")));
    assert_eq!(l.best_response, None);
    let l = tl.labels("2015-02-09");
    assert_eq!((l.status, l.index_date), (Status::NotIndexed, None));
}

// ================================================================ Second progression (dm:119-128)

// dm:120-122 "except those whose latest listing at or before PD1 is absent (a lesion absent at PD1
// that comes back is new in segment 2)". S0 = 60 (P1 40, L1 20). 04-20 P1 40, L1 absent → 40 ≤ 42 PR
// (nadir 40). 06-20 P1 70, L1 absent → 70 ≥ 48 → PD1 (OF, lung, primary_only, 70 > 50 → none).
// Segment 2 reference {P1}; 08-20 L1 12 → new → PD2 DF, [liver], metastasis_only, SBRT (12 ≤ 50).
// PFS2 06-20 → 08-20 = 61 days.
#[test]
fn a2_pd2_lesion_absent_at_pd1_returning_is_new() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![p1(40.0), absent("L1", Liver)])
        .scan("2015-06-20", vec![p1(70.0), absent("L1", Liver)])
        .scan("2015-08-20", vec![p1(70.0), lesion("L1", Liver, 12.0)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "PR"), tp("2015-06-20", 1, "PD"), tp("2015-08-20", 2, "PD")]
    );
    let l = tl.labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-06-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::None));
    assert_eq!(pd2(&l), pd("2015-08-20", Pattern::DF, vec![Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    assert_eq!(ck(&l.pfs2), clock("2015-06-20", "2015-08-20", 61, true, R::Progression));
    assert_eq!(l.best_response, Some(Response::PR));
}

// dm:122-124 "Its targets are chosen by the RECIST rule (feeder roles are honoured in segment 1 only)
// among those present with a diameter at PD1 ... S0 and nadir are the PD1 measurements"; dm:58-59
// "at most 2 per organ".
// (a) Baseline: P1 40 role target, L1 liver 30 role non_target → segment 1 targets {P1}, S0 40.
// 04-20 P1 50 (≥ 48, +10) → PD1 OF [lung] primary_only, SBRT (50 ≤ 50). Segment 2 targets {P1 50,
// L1 30}, S0₂ 80. 06-20 L1 47 → S 97 ≥ 96, +17 → PD2; L1 30 → 47 (≥ 36, +17) progressing → OF
// [liver] metastasis_only, SBRT (47 ≤ 50).
// (b) Three liver lesions L1 30, L2 25, L3 20 at PD1: segment-2 targets P1, L1, L2 (2 per organ);
// L3 non-target growing 20 → 45 is not PD (a non-target needs unequivocal progression) → SD.
#[test]
fn a2_pd2_targets_rechosen_by_recist_feeder_roles_ignored() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0).target(), lesion("L1", Liver, 30.0).non_target()])
        .scan("2015-04-20", vec![p1(50.0), lesion("L1", Liver, 30.0)])
        .scan("2015-06-20", vec![p1(50.0), lesion("L1", Liver, 47.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "PD")]);
    let l = tl.labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::Sbrt));
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::OF, vec![Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));

    let livers = |a: f64, b: f64, c: f64| {
        vec![p1(50.0), lesion("L1", Liver, a), lesion("L2", Liver, b), lesion("L3", Liver, c)]
    };
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0).target(), lesion("L1", Liver, 30.0), lesion("L2", Liver, 25.0), lesion("L3", Liver, 20.0)])
        .scan("2015-04-20", livers(30.0, 25.0, 20.0))
        .scan("2015-06-20", livers(30.0, 25.0, 45.0));
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "SD")]);
    assert!(tl.labels(VIEW).pd2.is_none());
}

// dm:124 "S0 and nadir are the PD1 measurements"; dm:73 nadir; dm:94 BOR "up to and including PD1".
// 40 → 60 PD1 04-20 (BOR PD). Segment 2, S0₂ 60: 06-20 40 ≤ 42 → PR; 08-20 47 < 48 → SD (> 42);
// 10-20 48 = 1.2 × 40, +8 → PD2 (own nadir 40 → OF, lung, primary_only, SBRT 48 ≤ 50).
// PFS2 04-20 → 10-20 = 183 days. BOR stays PD (segment 2's PR does not count), objective false.
#[test]
fn a2_pd2_nadir_from_segment_two_and_bor_limited_to_segment_one() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .scan("2015-06-20", vec![p1(40.0)])
        .scan("2015-08-20", vec![p1(47.0)])
        .scan("2015-10-20", vec![p1(48.0)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "PR"), tp("2015-08-20", 2, "SD"), tp("2015-10-20", 2, "PD")]
    );
    let l = tl.labels(VIEW);
    assert_eq!(pd2(&l), pd("2015-10-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::Sbrt));
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-10-20", 183, true, R::Progression));
    assert_eq!((l.best_response, l.objective_response), (Some(Response::PD), Some(false)));
}

// dm:115 "`wbrt` when brain is multiple and no WBRT course before PD1"; dm:127 "(its salvage candidate
// looks for WBRT before PD2)"; dm:144 salvage window [PD1, PD2).
// PD1 04-20 (40 → 60). PD2 06-20: four new brain lesions of 10 mm → DF [brain] metastasis_only,
// multiple. (a) WBRT 05-01 (between PD1 and PD2) → candidate none; salvage [wbrt].
// (b) WBRT on the PD2 day → not before PD2 → candidate wbrt; not in [PD1, PD2) → salvage false, [].
#[test]
fn a2_pd2_salvage_candidate_looks_for_wbrt_before_pd2() {
    let brains = || (1..=4).map(|i| lesion(&format!("B{i}"), Brain, 10.0)).chain([p1(60.0)]).collect::<Vec<_>>();
    let pre = || base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let l = pre().rt("2015-05-01", RtModality::Wbrt, RtRegion::Brain).scan("2015-06-20", brains()).labels(VIEW);
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::DF, vec![Brain], Extent::MetastasisOnly, Br::Multiple, Sc::None));
    assert_eq!((l.rt.salvage, l.rt.salvage_modalities.clone()), (Some(true), vec![RtModality::Wbrt]));
    let l = pre().scan("2015-06-20", brains()).rt("2015-06-20", RtModality::Wbrt, RtRegion::Brain).labels(VIEW);
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::DF, vec![Brain], Extent::MetastasisOnly, Br::Multiple, Sc::Wbrt));
    assert_eq!((l.rt.salvage, l.rt.salvage_modalities.clone()), (Some(false), vec![]));
    assert!(l.rt.any);
}

// dm:107-110 pattern and "the sorted set of organs"; if:48 "Sets are sorted arrays" (the example
// shows ["bone","brain"], name order). PD1 04-20: new liver L1 15 → DF [liver]. Segment 2 targets
// P1 40 + L1 15, S0₂ 55. PD2 06-20: L1 26 (15 → 26 progressing) and new bone O1 12 → ODF,
// sites [bone, liver] (name order), metastasis_only, brain none, SBRT (2 lesions, 26 and 12 ≤ 50).
#[test]
fn a2_pd2_odf_with_sites_sorted_by_name() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 15.0)])
        .scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 26.0), lesion("O1", Bone, 12.0)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    assert_eq!(json(&l)["pd2"]["sites"], serde_json::json!(["bone", "liver"]));
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::ODF, vec![Bone, Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
}

// dm:120-121 segment-2 reference includes "every new lesion of PD1"; dm:79-80 unequivocal progression
// of a reference lesion is PD; dm:14-15 "a lesion with no known size fails every such test".
// PD1 04-20: new bone O1 without a size → DF [bone], SBRT fails (size unknown) → none. Segment 2: O1 a
// non-target; 06-20 O1 unequivocal → PD2 OF [bone] metastasis_only, none, none.
#[test]
fn a2_pd2_unequivocal_progression_of_a_sizeless_new_lesion_of_pd1() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), no_size("O1", Bone)])
        .scan("2015-06-20", vec![p1(40.0), unequivocal("O1", Bone)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Bone], Extent::MetastasisOnly, Br::None, Sc::None));
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::OF, vec![Bone], Extent::MetastasisOnly, Br::None, Sc::None));
}

// ================================================================ RT and treatment flags (dm:141-154)

// dm:152-153 "next_therapy: {date, agent} of the first `treatment.started` on or after PD1 that is
// not crizotinib; null without one"; if:48 shape. PD1 04-20. Chemo 03-20 (before PD1), crizotinib
// restart 05-01, lorlatinib 06-01, alectinib 05-15 (arrives last) → alectinib 2015-05-15.
// Alectinib retracted → lorlatinib 06-01; as of 05-31 → null. Without PD1 → null.
#[test]
fn a2_next_therapy_first_non_crizotinib_start_on_or_after_pd1() {
    let tl = base()
        .start("2015-03-20", Agent::Chemotherapy, "chemo")
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .start("2015-05-01", Agent::Crizotinib, "c2")
        .start("2015-06-01", Agent::Lorlatinib, "lor")
        .start("2015-05-15", Agent::Alectinib, "alec");
    let alec = tl.last_id();
    let l = tl.labels(VIEW);
    assert_eq!(json(&l)["next_therapy"], serde_json::json!({"date": "2015-05-15", "agent": "alectinib"}));
    let tl = tl.retract("2015-07-01", alec);
    let nt = tl.labels(VIEW).next_therapy.expect("next therapy");
    assert_eq!((nt.date, nt.agent), (d("2015-06-01"), Agent::Lorlatinib));
    assert!(tl.labels("2015-05-31").next_therapy.is_none());
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0)])
        .start("2015-05-15", Agent::Alectinib, "alec")
        .labels(VIEW);
    assert!(l.pd1.is_none() && l.next_therapy.is_none());
}

// dm:142-146. Conventional thorax 2015-01-01 → prior, prior_extracranial, not prior_brain, [].
// PD1 04-20 (40 → 50), PD2 06-20 (50 → 65: ≥ 60, +15). (a) SRS on the PD2 day only → salvage false,
// [], any true. (b) no PD2 (the 06-20 scan absent): SBRT 04-20, SRS 06-20 and SRS 07-01 → salvage
// [sbrt, srs] (a set: SRS once); as of 2015-06-19 → [sbrt]. (c) only RT retracted → any false.
#[test]
fn a2_salvage_rt_window_sets_and_any() {
    let pre = || {
        base()
            .rt("2015-01-01", RtModality::Conventional, RtRegion::Thorax)
            .scan("2015-02-20", vec![p1(40.0)])
            .scan("2015-04-20", vec![p1(50.0)])
    };
    let l = pre().scan("2015-06-20", vec![p1(65.0)]).rt("2015-06-20", RtModality::Srs, RtRegion::Brain).labels(VIEW);
    assert!(l.pd2.is_some());
    assert_eq!((l.rt.prior, l.rt.prior_brain, l.rt.prior_extracranial), (Some(true), Some(false), Some(true)));
    assert!(l.rt.prior_brain_modalities.is_empty());
    assert_eq!((l.rt.salvage, l.rt.salvage_modalities.clone(), l.rt.any), (Some(false), vec![], true));
    let tl = pre()
        .rt("2015-04-20", RtModality::Sbrt, RtRegion::Thorax)
        .rt("2015-06-20", RtModality::Srs, RtRegion::Brain)
        .rt("2015-07-01", RtModality::Srs, RtRegion::Brain);
    let l = tl.labels(VIEW);
    assert_eq!(json(&l)["rt"]["salvage_modalities"], serde_json::json!(["sbrt", "srs"]));
    assert_eq!(tl.labels("2015-06-19").rt.salvage_modalities, vec![RtModality::Sbrt]);
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).rt("2015-05-01", RtModality::Sbrt, RtRegion::Bone);
    let r = tl.last_id();
    assert!(tl.labels(VIEW).rt.any);
    let l = tl.retract("2015-06-01", r).labels(VIEW);
    assert!(!l.rt.any);
    assert_eq!(json(&l)["rt"]["any"], serde_json::json!(false));
}

// ================================================================ Alerts (dm:155-170)

// dm:156-158 "deterministic alert_id (same facts → same id) ... the event that completed them";
// `first_progression`: PD1 found (pattern, sites, brain, salvage candidate); dm:159 brain oligo.
// Baseline P1 40; 04-20 P1 40 + new brain B1 8 → DF [brain] metastasis_only oligo SRS.
// Path A: baseline first, PD scan completes. Path B: PD scan first (no baseline → no PD1), baseline
// completes. Replay (before = None). Same facts → same ids; the completing event differs.
#[test]
fn a2_first_progression_alert_facts_and_deterministic_id() {
    let bl = |t: Tl| t.scan("2015-02-20", vec![p1(40.0)]);
    let pdscan = |t: Tl| t.scan("2015-04-20", vec![p1(40.0), lesion("B1", Brain, 8.0)]);
    let a_before = bl(base());
    let a_after = pdscan(a_before.clone());
    let b_before = pdscan(base());
    let b_after = bl(b_before.clone());
    assert!(b_before.labels(VIEW).pd1.is_none());
    let aa = alerts_between(Some(&a_before.project(VIEW)), &a_after.project(VIEW), Some(a_after.last_id()));
    let bb = alerts_between(Some(&b_before.project(VIEW)), &b_after.project(VIEW), Some(b_after.last_id()));
    let rr = alerts_between(None, &a_after.project(VIEW), None);
    let fp = |v: &[Alert]| v.iter().find(|x| x.kind == AlertKind::FirstProgression).cloned().expect("first_progression");
    let (fa, fb, fr) = (fp(&aa), fp(&bb), fp(&rr));
    assert_eq!(fa.alert_id, fb.alert_id);
    assert_eq!(fa.alert_id, fr.alert_id);
    assert_eq!(fa.event_id, Some(a_after.last_id()));
    assert_eq!(fb.event_id, Some(b_after.last_id()));
    assert_eq!(fa.patient_id, "P001");
    let f = fa.facts.to_string();
    for needle in ["\"DF\"", "\"brain\"", "\"oligo\"", "\"srs\"", "2015-04-20"] {
        assert!(f.contains(needle), "facts {f} lack {needle}");
    }
    assert!(alert_kinds(&aa).contains(&AlertKind::BrainOligoProgression));
    // Nothing changed → no alert.
    assert!(alerts_between(Some(&a_after.project(VIEW)), &a_after.project(VIEW), None).is_empty());
}

// dm:165-166 "`label_revised`: a late, corrected or retracted event changed an earlier PD1/PD2 date,
// pattern or clock; the alert gives before and after". The PD scan (P1 60 → OF [lung]) is corrected to
// also list a new adrenal A1 15 → ODF [adrenal, lung] primary_and_metastasis, same date; SBRT fails
// (dm:116-117: P1 is 60 > 50 mm) → candidate none.
#[test]
fn a2_label_revised_when_a_correction_changes_the_pattern() {
    let t0 = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let x = t0.last_id();
    let t1 = t0.clone().scan("2015-04-20", vec![p1(60.0), lesion("A1", Adrenal, 15.0)]).superseding(x);
    let l = t1.labels(VIEW);
    assert_eq!(
        pd1(&l),
        // Salvage: 2 extracranial lesions progress but P1 is 60 mm > 50 (dm:116-117): none.
        pd("2015-04-20", Pattern::ODF, vec![Adrenal, Lung], Extent::PrimaryAndMetastasis, Br::None, Sc::None)
    );
    let a = alerts_between(Some(&t0.project(VIEW)), &t1.project(VIEW), Some(t1.last_id()));
    let rev: Vec<_> = a.iter().filter(|x| x.kind == AlertKind::LabelRevised).collect();
    assert!(!rev.is_empty(), "{:?}", alert_kinds(&a));
    let f = rev.iter().map(|x| x.facts.to_string()).collect::<Vec<_>>().join(" ");
    assert!(f.contains("\"OF\"") && f.contains("\"ODF\""), "{f}");
    assert!(rev.iter().all(|x| x.facts.get("before").is_some() && x.facts.get("after").is_some()), "{f}");
}

// dm:165 label_revised on a clock; dm:162 death. Death 2016-01-01 then retracted: PFS1 was death at
// 305 days → censored_last_assessment at 04-20 (49 days); OS was death (396) → censored at 04-20
// (140 days; the retraction and the hidden death do not count). death_date null.
#[test]
fn a2_label_revised_when_the_death_is_retracted() {
    let t0 = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0)]).death("2016-01-01");
    let dth = t0.last_id();
    let b = t0.project(VIEW);
    assert_eq!(ck(&b.labels.os), clock("2014-12-01", "2016-01-01", 396, true, R::Death));
    let t1 = t0.retract("2016-02-01", dth);
    let a = t1.project(VIEW);
    assert_eq!(a.labels.death_date, None);
    assert_eq!(ck(&a.labels.pfs1), clock(T0, "2015-04-20", 49, false, R::CensoredLastAssessment));
    assert_eq!(ck(&a.labels.os), clock("2014-12-01", "2015-04-20", 140, false, R::CensoredLastKnownAlive));
    let al = alerts_between(Some(&b), &a, Some(t1.last_id()));
    let n = al.iter().filter(|x| x.kind == AlertKind::LabelRevised).count();
    assert!(n >= 2, "pfs1 and os revised: {al:?}");
    // The death alert when the death arrives.
    let pre = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0)]);
    let al = alerts_between(Some(&pre.project(VIEW)), &b, Some(dth));
    assert!(alert_kinds(&al).contains(&AlertKind::Death), "{al:?}");
}

// dm:160-161 "`oligo_bbm_without_upfront_brain_rt`: at T0 the patient has oligo BBM and no brain RT
// before T0". Baseline P1 40, B1 12, B2 20 (oligo: 2 lesions, largest 20 < 30).
// no RT → alert; WBRT on T0 − 1 → none; SBRT thorax before T0 → alert; SRS after T0 → alert;
// B2 30 → multiple → none; the pre-T0 WBRT retracted → alert raised by the retraction.
#[test]
fn a2_oligo_bbm_without_upfront_brain_rt_conditions() {
    let bl = |t: Tl, b2: f64| t.scan("2015-02-20", vec![p1(40.0), lesion("B1", Brain, 12.0), lesion("B2", Brain, b2)]);
    let has = |t: &Tl| {
        alert_kinds(&alerts_between(None, &t.project(VIEW), None)).contains(&AlertKind::OligoBbmWithoutUpfrontBrainRt)
    };
    assert!(has(&bl(base(), 20.0)), "no RT");
    let wbrt = bl(base(), 20.0).rt("2015-03-01", RtModality::Wbrt, RtRegion::Brain);
    assert!(!has(&wbrt), "WBRT T0 - 1");
    assert!(has(&bl(base(), 20.0).rt("2015-02-01", RtModality::Sbrt, RtRegion::Thorax)), "extracranial RT");
    assert!(has(&bl(base(), 20.0).rt("2015-03-10", RtModality::Srs, RtRegion::Brain)), "SRS after T0");
    assert!(!has(&bl(base(), 30.0)), "largest 30 mm → multiple");
    let w = wbrt.last_id();
    let after = wbrt.clone().retract("2015-06-01", w);
    let al = alerts_between(Some(&wbrt.project(VIEW)), &after.project(VIEW), Some(after.last_id()));
    let hit = al.iter().find(|x| x.kind == AlertKind::OligoBbmWithoutUpfrontBrainRt).expect("alert after retraction");
    assert_eq!(hit.event_id, Some(after.last_id()));
}

// dm:167-169 data_quality: "scan before diagnosis, reported vs computed response, ... a death before
// a clock's start". dx 2015-01-05; scan 2015-01-01 (before dx, outside the baseline window [01-19,
// 03-02]); death 2015-02-01 before T0: PFS1 T0 → 02-01 = −29 days, event death (no baseline);
// OS dx → death 27 days. A reported PR at a scan computed SD... no baseline here, so the mismatch is
// tested in a second timeline: reported PR, computed SD (40 → 38).
// Replay raises one data_quality alert per finding, with distinct ids; replaying again raises none.
#[test]
fn a2_data_quality_findings_and_alerts() {
    let tl = Tl::new()
        .enrolled_dx("2015-01-10", "2015-01-05")
        .scan("2015-01-01", vec![p1(40.0)])
        .crizotinib(T0)
        .death("2015-02-01");
    let p = tl.project(VIEW);
    assert_eq!(ck(&p.labels.pfs1), clock(T0, "2015-02-01", -29, true, R::Death));
    assert_eq!(ck(&p.labels.os), clock("2015-01-05", "2015-02-01", 27, true, R::Death));
    let k = kinds(&p);
    assert!(k.contains(&FindingKind::ScanBeforeDiagnosis) && k.contains(&FindingKind::DeathBeforeClockStart), "{k:?}");
    let al = alerts_between(None, &p, None);
    let dq: Vec<_> = al.iter().filter(|x| x.kind == AlertKind::DataQuality).collect();
    assert!(dq.len() >= 2, "{al:?}");
    let mut ids: Vec<_> = dq.iter().map(|x| x.alert_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), dq.len());
    assert!(alerts_between(Some(&p), &p, None).iter().all(|x| x.kind != AlertKind::DataQuality));

    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan_reported("2015-04-20", vec![p1(38.0)], registry_domain::events::ReportedResponse::PR);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.best_response, Some(Response::SD));
    assert!(kinds(&p).contains(&FindingKind::ReportedResponseMismatch));
}

// dm:163-164 "`followup_overdue`: alive, not lost to follow-up, and the last time point is older than
// 56 + 14 days at the view date". Last time point 04-20; view 07-01 (72 days). A follow-up contact
// (alive, 06-25) is not a time point → overdue. An LTFU record → none. Death 06-25 → none.
#[test]
fn a2_followup_overdue_counts_time_points_not_contacts() {
    let pre = || base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0)]);
    let cfg = Config::default();
    let alive = pre().followup("2015-06-25", FollowupStatus::Alive);
    let a = followup_overdue(&alive.project("2015-07-01"), d("2015-07-01"), &cfg).expect("overdue");
    assert_eq!((a.kind, a.patient_id.as_str()), (AlertKind::FollowupOverdue, "P001"));
    let ltfu = pre().followup("2015-06-25", FollowupStatus::LostToFollowUp);
    assert!(followup_overdue(&ltfu.project("2015-07-01"), d("2015-07-01"), &cfg).is_none());
    let dead = pre().death("2015-06-25");
    assert!(followup_overdue(&dead.project("2015-07-01"), d("2015-07-01"), &cfg).is_none());
    // Death after the view date is not in view: still overdue.
    let later = pre().death("2015-08-01");
    assert!(followup_overdue(&later.project("2015-07-01"), d("2015-07-01"), &cfg).is_some());
}

// ================================================================ Views (dm:171-176)

// dm:172-176 as_of "clinical events with occurred_on ≤ date; the view date of the clocks"; known_at
// "events the registry had received by then"; reproducible "byte for byte, forever".
// (a) as of 04-19: PD scan 04-20 out → no PD1, PFS1 censored_no_assessment at T0, OS censored at the
// latest event ≤ 04-19 (crizotinib 03-02: 91 days); as of 04-20: PD1.
// (b) Labels as known at idx 3 (the last of the first four arrivals) do not change when later
// arrivals (a retraction of the PD scan and a back-dated scan) are added to the store.
#[test]
fn a2_views_as_of_inclusive_and_known_at_reproducible() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let l = tl.labels("2015-04-19");
    assert!(l.pd1.is_none());
    assert_eq!(ck(&l.pfs1), clock(T0, T0, 0, false, R::CensoredNoAssessment));
    assert_eq!(ck(&l.os), clock("2014-12-01", "2015-03-02", 91, false, R::CensoredLastKnownAlive));
    assert_eq!(tl.labels("2015-04-20").pd1.map(|p| p.date), Some(d("2015-04-20")));
    let x = tl.last_id();
    // Arrivals: enrolment 0, crizotinib 1, baseline scan 2, PD scan 3 (known_at is inclusive, so
    // at(3) holds the PD scan and not the retraction arriving at 4).
    let frozen = view_known(&tl, VIEW, 3).expect("audit timeline").labels.to_json_line();
    let grown = tl.clone().retract("2015-05-01", x).scan("2015-03-20", vec![p1(70.0)]);
    assert_eq!(view_known(&grown, VIEW, 3).expect("audit timeline").labels.to_json_line(), frozen);
    assert_ne!(grown.labels(VIEW).to_json_line(), frozen);
    // known_at before the first arrival: nothing known → not listed.
    assert!(grown.project_view(View { as_of: d(VIEW), known_at: Some(at(0).expect("audit timeline") - chrono::Duration::seconds(1)) }).is_none());
}

// ================================================================ Labels JSON shape (if:31-49)

// if:33-49 the full indexed shape, byte for byte. WBRT 01-20 and SRS 01-25 (brain, before T0) →
// prior, prior_brain, ["srs","wbrt"], not extracranial. Baseline 02-20: P1 43, O1 bone 40 (targets,
// S0 83), B1 brain 8 (non-target, BBM oligo, 1 lesion); metastatic organs {bone, brain} = 2, lesions 2.
// 04-20 P1 20, O1 30 → 50 ≤ 58.1 → PR (B1 present: non-CR/non-PD). 06-20 P1 20, O1 40 (30 → 40:
// progressing), B1 8, new brain B2 6 → S 60 ≥ 60, +10 → PD1 ODF, sites ["bone","brain"],
// metastasis_only, brain oligo (B2 only), SRS. PFS1 110 days. SRS 07-01 → salvage ["srs"].
// 08-20 unchanged → segment 2 targets P1, O1 (S0₂ 60) → SD; PFS2 censored at 08-20 (61 days).
// Follow-up alive 2016-05-01 → OS 517 days. CBPD: open course, 07-11 ≤ view → true.
#[test]
fn a2_indexed_labels_exact_json() {
    let tl = base()
        .rt("2015-01-20", RtModality::Wbrt, RtRegion::Brain)
        .rt("2015-01-25", RtModality::Srs, RtRegion::Brain)
        .scan("2015-02-20", vec![p1(43.0), lesion("O1", Bone, 40.0), lesion("B1", Brain, 8.0)])
        .scan("2015-04-20", vec![p1(20.0), lesion("O1", Bone, 30.0), lesion("B1", Brain, 8.0)])
        .scan("2015-06-20", vec![p1(20.0), lesion("O1", Bone, 40.0), lesion("B1", Brain, 8.0), lesion("B2", Brain, 6.0)])
        .rt("2015-07-01", RtModality::Srs, RtRegion::Brain)
        .scan("2015-08-20", vec![p1(20.0), lesion("O1", Bone, 40.0), lesion("B1", Brain, 8.0), lesion("B2", Brain, 6.0)])
        .followup("2016-05-01", FollowupStatus::Alive);
    let expected = concat!(
        r#"{"patient_id":"P001","status":"indexed","index_date":"2015-03-02","diagnosis_date":"2014-12-01","#,
        r#""baseline":{"scan_date":"2015-02-20","bbm":true,"bbm_class":"oligo","brain_lesions":1,"metastatic_organs":2,"metastatic_lesions":2,"target_sum_mm":83},"#,
        r#""best_response":"PR","objective_response":true,"#,
        r#""pd1":{"date":"2015-06-20","pattern":"ODF","extent":"metastasis_only","sites":["bone","brain"],"brain":"oligo","salvage_candidate":"srs"},"#,
        r#""pd2":null,"#,
        r#""pfs1":{"start":"2015-03-02","end":"2015-06-20","days":110,"event":true,"reason":"progression"},"#,
        r#""pfs2":{"start":"2015-06-20","end":"2015-08-20","days":61,"event":false,"reason":"censored_last_assessment"},"#,
        r#""os":{"start":"2014-12-01","end":"2016-05-01","days":517,"event":false,"reason":"censored_last_known_alive"},"#,
        r#""rt":{"prior":true,"prior_brain":true,"prior_brain_modalities":["srs","wbrt"],"prior_extracranial":false,"salvage":true,"salvage_modalities":["srs"],"any":true},"#,
        r#""cbpd":true,"next_therapy":null,"death_date":null}"#
    );
    let got = tl.labels(VIEW).to_json_line();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&got).expect("audit timeline"), serde_json::from_str::<serde_json::Value>(expected).expect("audit timeline"), "{got}");
    assert_eq!(got, expected);
}

// dm:21-22 a correction hides the event it names "(a correction only on an event of the same type)";
// a retraction is an event like any other, so a retraction can be corrected by a retraction.
// X 04-20 P1 60, Y 06-20 P1 80. r1 retracts X → only Y → PD1 06-20. r2 (a retraction of Y that
// supersedes r1) hides r1 → X back, Y hidden → only time point 04-20, PD1 04-20.
#[test]
fn a2_retraction_corrected_by_another_retraction() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let x = tl.last_id();
    let tl = tl.scan("2015-06-20", vec![p1(80.0)]);
    let y = tl.last_id();
    let tl = tl.retract("2015-07-01", x);
    let r1 = tl.last_id();
    assert_eq!(tl.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-06-20")));
    let tl = tl.retract("2015-07-02", y).superseding(r1);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD")]);
    assert_eq!(tl.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-04-20")));
}

// dm:165-166 label_revised for an earlier PD2 date. PD1 04-20 (40 → 60, S0₂ 60); PD2 08-20 (80 ≥ 72,
// +20). A late scan 06-20 (P1 75 ≥ 72, +15) arrives → PD2 06-20; PFS2 end 08-20 → 06-20 (61 days).
#[test]
fn a2_label_revised_when_a_late_scan_moves_pd2_earlier() {
    let t0 = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .scan("2015-08-20", vec![p1(80.0)]);
    assert_eq!(t0.labels(VIEW).pd2.map(|p| p.date), Some(d("2015-08-20")));
    let t1 = t0.clone().scan("2015-06-20", vec![p1(75.0)]);
    let l = t1.labels(VIEW);
    assert_eq!(l.pd2.as_ref().map(|p| p.date), Some(d("2015-06-20")));
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-06-20", 61, true, R::Progression));
    let a = alerts_between(Some(&t0.project(VIEW)), &t1.project(VIEW), Some(t1.last_id()));
    let f = a.iter().filter(|x| x.kind == AlertKind::LabelRevised).map(|x| x.facts.to_string()).collect::<Vec<_>>().join(" ");
    assert!(f.contains("2015-08-20") && f.contains("2015-06-20"), "{:?}", alert_kinds(&a));
}
