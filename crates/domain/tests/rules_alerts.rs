//! domain.md "Alerts": alerts as data between two projections, deterministic ids, followup_overdue.
#![allow(clippy::type_complexity)]

mod rules_support;

use registry_domain::alerts::{alerts_between, followup_overdue, Alert, AlertKind};
use registry_domain::config::Config;
use registry_domain::events::{FollowupStatus, RtModality, RtRegion};
use rules_support::*;

fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}
fn two_targets() -> Tl {
    base().scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
}
fn kinds(alerts: &[Alert]) -> Vec<AlertKind> {
    alerts.iter().map(|a| a.kind).collect()
}

#[test]
fn first_progression_with_oligo_brain_raises_both_alerts_with_the_completing_event() {
    let before = two_targets().scan("2015-04-20", vec![p1(38.0), lesion("L1", Liver, 20.0)]);
    let after = before.clone().scan("2015-06-20", vec![p1(38.0), lesion("L1", Liver, 20.0), lesion("B1", Brain, 8.0)]);
    let completing = after.last_id();
    let a = alerts_between(Some(&before.project(VIEW)), &after.project(VIEW), Some(completing));
    assert_eq!(kinds(&a), vec![AlertKind::FirstProgression, AlertKind::BrainOligoProgression]);
    assert!(a.iter().all(|x| x.event_id == Some(completing) && x.patient_id == "P001"));
    assert_eq!(a[0].facts["date"], "2015-06-20");
    assert_eq!(a[0].facts["pattern"], "DF");
    assert_eq!(a[0].facts["brain"], "oligo");
    assert_eq!(a[0].facts["salvage_candidate"], "srs");
    assert_eq!(a[0].alert_id.len(), 64);
    // Nothing new, nothing raised.
    assert!(alerts_between(Some(&after.project(VIEW)), &after.project(VIEW), None).is_empty());
}

#[test]
fn alert_ids_depend_on_the_facts_not_on_the_completing_event_or_arrival_order() {
    let tl = two_targets().scan("2015-06-20", vec![p1(38.0), lesion("L1", Liver, 20.0), lesion("B1", Brain, 8.0)]);
    let mut rev = tl.clone();
    rev.events.reverse();
    let a = alerts_between(None, &tl.project(VIEW), Some(tl.id_at(0)));
    let b = alerts_between(None, &rev.project(VIEW), None);
    let ids = |v: &[Alert]| v.iter().map(|x| (x.kind, x.alert_id.clone())).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert!(!a.is_empty());
}

#[test]
fn oligo_bbm_without_upfront_brain_rt() {
    let bl = |tl: Tl| tl.scan("2015-02-20", vec![p1(40.0), lesion("B1", Brain, 12.0)]);
    let a = alerts_between(None, &bl(base()).project(VIEW), None);
    assert_eq!(kinds(&a), vec![AlertKind::OligoBbmWithoutUpfrontBrainRt]);
    assert_eq!(a[0].facts["brain_lesions"], 1);
    // With SRS before T0: no alert.
    let a = alerts_between(None, &bl(base().rt("2015-02-01", RtModality::Srs, RtRegion::Brain)).project(VIEW), None);
    assert!(a.is_empty(), "{a:?}");
    // Multiple BBM: no alert.
    let multi = base().scan("2015-02-20", vec![p1(40.0), lesion("B1", Brain, 35.0)]);
    assert!(alerts_between(None, &multi.project(VIEW), None).is_empty());
}

#[test]
fn second_progression_and_death() {
    let pd1 = two_targets().scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)]);
    let pd2 = pd1.clone().scan(
        "2015-06-20",
        vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0), lesion("O1", Bone, 9.0)],
    );
    let a = alerts_between(Some(&pd1.project(VIEW)), &pd2.project(VIEW), Some(pd2.last_id()));
    assert_eq!(kinds(&a), vec![AlertKind::SecondProgression]);
    assert_eq!(a[0].facts["date"], "2015-06-20");
    let dead = pd2.clone().death("2015-07-01");
    let a = alerts_between(Some(&pd2.project(VIEW)), &dead.project(VIEW), Some(dead.last_id()));
    // The death ends the PFS2 and OS clocks as events: the normal course, not a revision.
    assert_eq!(kinds(&a), vec![AlertKind::Death]);
    assert_eq!(a[0].facts["death_date"], "2015-07-01");
}

#[test]
fn label_revised_when_a_late_or_corrected_event_changes_pd1_or_a_clock() {
    // Before: PD1 on 2015-06-20. A late scan of 2015-04-20 showing the new lesion moves PD1 earlier.
    let before =
        two_targets().scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)]);
    let after =
        before.clone().scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 12.0)]);
    let a = alerts_between(Some(&before.project(VIEW)), &after.project(VIEW), Some(after.last_id()));
    let revised: Vec<&Alert> = a.iter().filter(|x| x.kind == AlertKind::LabelRevised).collect();
    let labels: Vec<&str> = revised.iter().map(|x| x.facts["label"].as_str().unwrap_or("")).collect();
    assert_eq!(labels, vec!["pd1", "pfs1", "pfs2"]); // PFS2 now starts on the earlier PD1
    assert_eq!(revised[0].facts["before"]["date"], "2015-06-20");
    assert_eq!(revised[0].facts["after"]["date"], "2015-04-20");
    assert_eq!(revised[1].facts["after"]["days"], 49);

    // A retraction that undoes PD1.
    let scan = before.last_id();
    let retracted = before.clone().retract("2015-07-01", scan);
    let a = alerts_between(Some(&before.project(VIEW)), &retracted.project(VIEW), Some(retracted.last_id()));
    assert!(a
        .iter()
        .any(|x| x.kind == AlertKind::LabelRevised && x.facts["label"] == "pd1" && x.facts["after"].is_null()));

    // A new scan in order only moves censoring forward: no revision.
    let b = two_targets().scan("2015-04-20", vec![p1(38.0), lesion("L1", Liver, 20.0)]);
    let c = b.clone().scan("2015-06-20", vec![p1(38.0), lesion("L1", Liver, 20.0)]);
    let a = alerts_between(Some(&b.project(VIEW)), &c.project(VIEW), Some(c.last_id()));
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn data_quality_alert_for_each_new_finding_only() {
    let before = base().death("2016-01-01");
    let after = before.clone().scan("2016-02-01", vec![p1(40.0)]);
    let a = alerts_between(Some(&before.project(VIEW)), &after.project(VIEW), Some(after.last_id()));
    assert_eq!(kinds(&a), vec![AlertKind::DataQuality]);
    assert_eq!(a[0].facts["finding"], "scan_after_death");
    assert_eq!(a[0].facts["event_id"], after.last_id().to_string());
    // Already known: nothing new.
    assert!(alerts_between(Some(&after.project(VIEW)), &after.project(VIEW), None).is_empty());
}

#[test]
fn followup_overdue_after_56_plus_14_days() {
    let cfg = Config::default();
    let tl = two_targets().scan("2015-04-20", vec![p1(38.0), lesion("L1", Liver, 20.0)]);
    let p = tl.project("2015-04-20");
    // 2015-04-20 + 70 days = 2015-06-29.
    assert!(followup_overdue(&p, d("2015-06-29"), &cfg).is_none());
    let a = followup_overdue(&p, d("2015-06-30"), &cfg).expect("overdue");
    assert_eq!(a.kind, AlertKind::FollowupOverdue);
    assert_eq!(a.facts["last_assessment"], "2015-04-20");
    assert_eq!(a.event_id, None);
    // Same facts on a later day: same id.
    let later = followup_overdue(&p, d("2015-09-01"), &cfg).expect("overdue");
    assert_eq!(a.alert_id, later.alert_id);
    // Dead or lost to follow-up: never.
    let dead = tl.clone().death("2015-05-01").project(VIEW);
    assert!(followup_overdue(&dead, d("2016-01-01"), &cfg).is_none());
    let lost = tl.clone().followup("2015-05-01", FollowupStatus::LostToFollowUp).project(VIEW);
    assert!(followup_overdue(&lost, d("2016-01-01"), &cfg).is_none());
    // An alive follow-up contact does not count as an assessment.
    let alive = tl.followup("2015-06-01", FollowupStatus::Alive).project(VIEW);
    assert!(followup_overdue(&alive, d("2015-06-30"), &cfg).is_some());
}
