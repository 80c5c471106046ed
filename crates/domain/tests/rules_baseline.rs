//! domain.md "Baseline and reference sets": window, counted listings, reference set, normal nodes,
//! target choice (feeder roles or RECIST 1.1 §3.3.1), BBM and its class, metastatic organs/lesions.
#![allow(clippy::type_complexity)]

mod rules_support;

use registry_domain::labels::{BrainClass, ClockReason};
use rules_support::*;

#[test]
fn baseline_window_is_t0_minus_42_to_t0_inclusive() {
    // T0 = 2015-03-02; T0 − 42 days = 2015-01-19.
    let cases = [
        ("2015-01-19", Some("2015-01-19")),
        ("2015-01-18", None),
        ("2015-03-02", Some("2015-03-02")),
        ("2015-02-20", Some("2015-02-20")),
    ];
    for (scan, expected) in cases {
        let l = base()
            .scan(scan, vec![lesion("P1", Lung, 40.0).primary()])
            .scan("2015-05-01", vec![lesion("P1", Lung, 20.0).primary()])
            .labels(VIEW);
        assert_eq!(l.baseline.as_ref().map(|b| b.scan_date), expected.map(d), "scan {scan}");
        if expected.is_none() {
            // No baseline: no responses, PD1, PD2, BOR, CBPD; PFS1 censored `no_baseline` at T0.
            assert_eq!(l.best_response, None);
            assert_eq!(l.objective_response, None);
            assert_eq!(l.pd1, None);
            assert_eq!(l.cbpd, None);
            let pfs1 = l.pfs1.expect("pfs1 with T0");
            assert_eq!((pfs1.end, pfs1.days, pfs1.reason), (d(T0), 0, ClockReason::NoBaseline));
        } else {
            assert_eq!(l.best_response.map(|r| r.as_str()), Some("PR"), "scan {scan}");
        }
    }
}

#[test]
fn latest_evaluated_listing_in_the_window_counts_and_scan_date_is_the_latest_study() {
    let l = base()
        .scan("2015-01-25", vec![lesion("P1", Lung, 20.0).primary(), lesion("L1", Liver, 20.0)])
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary()])
        .scan("2015-02-25", vec![not_evaluated("P1", Lung)])
        .labels(VIEW);
    let b = l.baseline.expect("baseline");
    assert_eq!(b.scan_date, d("2015-02-25"));
    // P1 counts 40 (latest evaluated), L1 20 from the earlier study in the window.
    assert_eq!(b.target_sum_mm, Some(60.0));
}

#[test]
fn lesion_only_not_evaluated_at_baseline_is_a_reference_non_target() {
    // X1 is never new, even when it shows up later.
    let tl = base()
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), not_evaluated("X1", Bone)])
        .scan("2015-04-20", vec![lesion("P1", Lung, 20.0).primary()])
        .scan("2015-06-20", vec![lesion("P1", Lung, 20.0).primary(), lesion("X1", Bone, 15.0)]);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.pd1, None);
    // Target PR; non-target NE then non-CR/non-PD: overall PR both times.
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "PR"), ("2015-06-20".into(), 1, "PR")]);
    let b = p.labels.baseline.expect("baseline");
    assert_eq!((b.metastatic_organs, b.metastatic_lesions), (1, 1));
}

#[test]
fn lesion_absent_at_baseline_is_not_in_the_reference_set_and_is_new_when_it_appears() {
    let l = base()
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), absent("A1", Liver)])
        .scan("2015-04-20", vec![lesion("P1", Lung, 38.0).primary(), lesion("A1", Liver, 12.0)])
        .labels(VIEW);
    assert_eq!(l.baseline.as_ref().map(|b| b.metastatic_lesions), Some(0));
    let pd1 = l.pd1.expect("new lesion is PD");
    assert_eq!(format!("{:?}", pd1.pattern), "DF");
    assert_eq!(pd1.sites, vec![Liver]);
}

#[test]
fn normal_node_is_neither_target_nor_non_target_never_new_and_cannot_progress() {
    let tl = base()
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), lesion("N1", RegionalLn, 8.0)])
        .scan("2015-04-20", vec![lesion("P1", Lung, 40.0).primary(), lesion("N1", RegionalLn, 25.0)])
        .scan("2015-06-20", vec![lesion("P1", Lung, 20.0).primary(), lesion("N1", RegionalLn, 30.0)]);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.pd1, None);
    // Only P1 is a target (40); no non-targets: target SD then PR gives SD then PR.
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "SD"), ("2015-06-20".into(), 1, "PR")]);
    let b = p.labels.baseline.expect("baseline");
    assert_eq!(b.target_sum_mm, Some(40.0));
    assert_eq!((b.metastatic_organs, b.metastatic_lesions), (0, 0), "normal nodes are not metastases");
}

#[test]
fn feeder_roles_give_exactly_the_marked_targets_normal_nodes_included() {
    let l = base()
        .scan(
            "2015-02-20",
            vec![
                lesion("P1", Lung, 40.0).primary().target(),
                lesion("L1", Liver, 30.0),
                lesion("N1", RegionalLn, 8.0).target(),
            ],
        )
        .labels(VIEW);
    assert_eq!(l.baseline.expect("baseline").target_sum_mm, Some(48.0));
}

#[test]
fn recist_target_choice_measurable_largest_two_per_organ_nodes_one_organ_five_in_all() {
    let l = base()
        .scan(
            "2015-02-20",
            vec![
                lesion("P1", Lung, 40.0).primary(),
                lesion("LA", Liver, 20.0),
                lesion("LB", Liver, 20.0),
                lesion("LC", Liver, 30.0),
                lesion("N1", RegionalLn, 20.0),
                lesion("N2", DistantLn, 16.0),
                lesion("N3", RegionalLn, 15.0),
                lesion("B1", Brain, 12.0),
                lesion("O1", Bone, 50.0).non_target(),
                lesion("L9", Lung, 9.0),
                lesion("N4", RegionalLn, 14.0),
            ],
        )
        .labels(VIEW);
    let b = l.baseline.expect("baseline");
    // P1 40, LC 30, LA 20 (tie with LB and N1 broken by id; liver full after LA), N1 20, N2 16.
    assert_eq!(b.target_sum_mm, Some(126.0));
    // Non-primary, not normal: LA LB LC (liver) N1 N3 N4 (regional) N2 (distant) B1 O1 L9.
    assert_eq!(b.metastatic_lesions, 10);
    assert_eq!(b.metastatic_organs, 6);
}

#[test]
fn measurability_thresholds() {
    // (lesion, is a target?) — non-nodal ≥ 10 mm, nodal short axis ≥ 15 mm.
    let cases = [
        (lesion("X", Liver, 10.0), true),
        (lesion("X", Liver, 9.9), false),
        (lesion("X", RegionalLn, 15.0), true),
        (lesion("X", DistantLn, 14.9), false),
        (no_size("X", Liver), false),
        (unequivocal("X", Liver).mm(30.0), false),
    ];
    for (les, is_target) in cases {
        let label = format!("{:?} {:?}", les.0.organ, les.0.diameter_mm);
        let l = base().scan("2015-02-20", vec![les]).labels(VIEW);
        let b = l.baseline.expect("baseline");
        assert_eq!(b.target_sum_mm.is_some(), is_target, "{label}");
    }
}

#[test]
fn target_ties_break_by_lesion_id_byte_order() {
    // Lung holds two targets: P1 and then "B2" (byte 'B' < 'a'); a1 is a non-target, so its growth
    // alone is not PD.
    let l = base()
        .scan(
            "2015-02-20",
            vec![lesion("P1", Lung, 40.0).primary(), lesion("a1", Lung, 20.0), lesion("B2", Lung, 20.0)],
        )
        .scan(
            "2015-04-20",
            vec![lesion("P1", Lung, 40.0).primary(), lesion("a1", Lung, 40.0), lesion("B2", Lung, 20.0)],
        )
        .labels(VIEW);
    assert_eq!(l.pd1, None);
    assert_eq!(l.best_response.map(|r| r.as_str()), Some("SD"));
}

#[test]
fn bbm_and_its_class() {
    // (brain lesions at baseline, bbm, class, count)
    let cases: Vec<(Vec<L>, bool, Option<BrainClass>, u32)> = vec![
        (vec![], false, None, 0),
        (
            vec![lesion("B1", Brain, 29.0), lesion("B2", Brain, 10.0), lesion("B3", Brain, 5.0)],
            true,
            Some(BrainClass::Oligo),
            3,
        ),
        (
            vec![
                lesion("B1", Brain, 5.0),
                lesion("B2", Brain, 5.0),
                lesion("B3", Brain, 5.0),
                lesion("B4", Brain, 5.0),
            ],
            true,
            Some(BrainClass::Multiple),
            4,
        ),
        (vec![lesion("B1", Brain, 30.0)], true, Some(BrainClass::Multiple), 1),
        (vec![no_size("B1", Brain)], true, Some(BrainClass::Multiple), 1),
        (vec![absent("B1", Brain)], false, None, 0),
    ];
    for (brain, bbm, class, n) in cases {
        let mut lesions = vec![lesion("P1", Lung, 40.0).primary()];
        lesions.extend(brain);
        let b = base().scan("2015-02-20", lesions).labels(VIEW).baseline.expect("baseline");
        assert_eq!((b.bbm, b.bbm_class, b.brain_lesions), (bbm, class, n));
    }
}

#[test]
fn size_test_uses_the_latest_earlier_measurement_when_the_listing_has_none() {
    // B1 unsized at baseline, measured 12 mm on an earlier study (outside the window): oligo.
    let b = base()
        .scan("2014-12-01", vec![lesion("B1", Brain, 12.0)])
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), no_size("B1", Brain)])
        .labels(VIEW)
        .baseline
        .expect("baseline");
    assert_eq!(b.bbm_class, Some(BrainClass::Oligo));
}

#[test]
fn target_sum_is_shown_without_float_noise() {
    // 41.1 + 42.2 is 83.30000000000001 in binary floating point; the label says 83.3.
    let l = base().scan("2015-02-20", vec![lesion("P1", Lung, 41.1).primary(), lesion("L1", Liver, 42.2)]).labels(VIEW);
    assert!(l.to_json_line().contains(r#""target_sum_mm":83.3}"#), "{}", l.to_json_line());
}
