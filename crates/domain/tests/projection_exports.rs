//! What the projection exports beside the labels, for timelines and the report: S per time point,
//! segment 2's S0, the baseline's metastatic organs and the enrolment that counts.

mod rules_support;

use registry_domain::events::Organ;
use rules_support::*;

fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}
fn l1(mm: f64) -> L {
    lesion("L1", Liver, mm)
}

fn sums(p: &registry_domain::projection::PatientProjection) -> Vec<(String, u8, &'static str, Option<f64>, bool)> {
    p.timepoints
        .iter()
        .map(|t| (t.date.to_string(), t.segment, t.response.as_str(), t.target_sum_mm, t.all_targets_evaluated))
        .collect()
}

#[test]
fn every_time_point_carries_its_target_sum_and_segment_two_its_own() {
    // Baseline P1 40 + L1 20 (S0 60). PR at 42, NE with L1 unlisted (partial S 30), PR at 30 with
    // L1 gone, PD1 by a new brain lesion B1 (S 30). Segment 2 re-baselines at PD1: L1 is absent
    // (dropped), targets P1 30 and B1 12, S0 42; then SD at 43.1.
    let p = base()
        .scan("2015-02-20", vec![p1(40.0), l1(20.0)])
        .scan("2015-04-20", vec![p1(30.0), l1(12.0)])
        .scan("2015-05-20", vec![p1(30.0)])
        .scan("2015-06-20", vec![p1(30.0), absent("L1", Liver)])
        .scan("2015-08-20", vec![p1(30.0), absent("L1", Liver), lesion("B1", Brain, 12.0)])
        .scan("2015-10-20", vec![p1(31.1), absent("L1", Liver), lesion("B1", Brain, 12.0)])
        .project(VIEW);
    assert_eq!(
        sums(&p),
        vec![
            ("2015-04-20".into(), 1, "PR", Some(42.0), true),
            ("2015-05-20".into(), 1, "NE", Some(30.0), false),
            ("2015-06-20".into(), 1, "PR", Some(30.0), true),
            ("2015-08-20".into(), 1, "PD", Some(30.0), true),
            ("2015-10-20".into(), 2, "SD", Some(43.1), true),
        ]
    );
    assert_eq!(p.labels.baseline.as_ref().and_then(|b| b.target_sum_mm), Some(60.0));
    assert_eq!(p.pd1_target_sum_mm, Some(42.0));
}

#[test]
fn without_targets_the_sums_are_null_and_without_pd1_there_is_no_segment_two_sum() {
    // Only a non-measurable bone lesion: no target; non-target response only.
    let p = base()
        .scan("2015-02-20", vec![no_size("O1", Bone)])
        .scan("2015-04-20", vec![no_size("O1", Bone)])
        .project(VIEW);
    assert_eq!(sums(&p), vec![("2015-04-20".into(), 1, "SD", None, true)]);
    assert_eq!(p.pd1_target_sum_mm, None);
}

#[test]
fn baseline_metastatic_sites_are_the_organs_behind_the_count() {
    // Primary lung (not a metastasis), liver and brain metastases, a bone lesion without size,
    // a normal regional node (8 mm: excluded), an absent adrenal lesion (not in the reference set).
    let p = base()
        .scan(
            "2015-02-20",
            vec![
                p1(40.0),
                l1(20.0),
                lesion("B1", Brain, 12.0),
                no_size("O1", Bone),
                lesion("N1", RegionalLn, 8.0),
                absent("A1", Adrenal),
            ],
        )
        .project(VIEW);
    assert_eq!(p.baseline_metastatic_sites, Some(vec![Organ::Bone, Organ::Brain, Organ::Liver]));
    assert_eq!(p.labels.baseline.as_ref().map(|b| b.metastatic_organs), Some(3));
    // No baseline scan: no sites (not an empty list).
    let p = base().scan("2015-04-20", vec![p1(30.0)]).project(VIEW);
    assert!(p.labels.baseline.is_none());
    assert_eq!(p.baseline_metastatic_sites, None);
}

#[test]
fn the_enrolment_that_counts_is_exported() {
    // Two enrolments: the first in canonical order counts.
    let tl = Tl::new().enrolled_dx("2015-01-10", "2014-12-01").enrolled_dx("2015-01-20", "2014-11-01");
    let p = tl.project(VIEW);
    assert_eq!(p.enrollment.as_ref().map(|e| e.diagnosis_date), Some(d("2014-12-01")));
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-12-01")));
    // Retract the first: the second counts, and the labels follow.
    let first = tl.id_at(0);
    let p = tl.retract("2015-02-01", first).project(VIEW);
    assert_eq!(p.enrollment.as_ref().map(|e| e.diagnosis_date), Some(d("2014-11-01")));
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-11-01")));
    // In a view before the enrolment there is none (the patient is listed through other events).
    let p = Tl::new().crizotinib("2015-03-02").enrolled("2015-04-01").project("2015-03-15");
    assert!(p.enrollment.is_none());
}

#[test]
fn events_by_patient_groups_a_whole_log_with_the_link_targets_of_other_patients() {
    use registry_domain::config::Config;
    use registry_domain::projection::project_patient;
    use registry_domain::view::{events_by_patient, View};
    // Two patients interleaved in the log; P002 retracts one of P001's events (a cross-patient
    // link: ignored, with a finding, so P002's group must hold that event of P001).
    let a = base().scan("2015-02-20", vec![p1(40.0)]);
    let target = a.id_at(2);
    let b = Tl::for_patient("P002").enrolled("2015-01-05").crizotinib("2015-02-01").retract("2015-03-01", target);
    let mut log = Vec::new();
    let (ra, rb) = (a.recorded(), b.recorded());
    for i in 0..ra.len().max(rb.len()) {
        log.extend(ra.get(i).cloned());
        log.extend(rb.get(i).cloned());
    }
    for (i, r) in log.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
    }
    let groups = events_by_patient(log.clone());
    let ids: Vec<&str> = groups.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(ids, ["P001", "P002"]);
    assert_eq!(groups[0].1.len(), ra.len());
    assert_eq!(groups[1].1.len(), rb.len() + 1, "P002 also carries the P001 event its retraction names");
    assert!(groups[1].1.iter().any(|r| r.event.event_id == target));
    // Projecting each group gives what projecting over the whole log gives.
    let view = View::as_of(d(VIEW));
    for (pid, events) in &groups {
        assert_eq!(project_patient(pid, events, &view, &Config::default()), project_patient(pid, &log, &view, &Config::default()));
    }
}
