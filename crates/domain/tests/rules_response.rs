//! domain.md "Time points and response (RECIST 1.1)": grouping, S with absent = 0, nadir,
//! target / non-target / new lesion / reappearance / overall responses, BOR, reported responses.
#![allow(clippy::type_complexity)]

mod rules_support;

use registry_domain::events::ReportedResponse;
use registry_domain::findings::FindingKind;
use rules_support::*;

/// Baseline 2015-02-20: P1 lung 40 (primary), L1 liver 20: both targets, S0 = 60.
fn two_targets() -> Tl {
    base().scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), lesion("L1", Liver, 20.0)])
}
fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}
fn l1(mm: f64) -> L {
    lesion("L1", Liver, mm)
}

#[test]
fn time_points_group_studies_within_seven_days_of_the_first() {
    // 7 days apart: one time point dated by its first study; S = 30 + 12 = 42 = 0.7 × 60: PR.
    let p = two_targets().scan("2015-04-20", vec![p1(30.0)]).scan("2015-04-27", vec![l1(12.0)]).project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "PR")]);
    // 8 days apart: two time points, each missing a target: NE, NE.
    let p = two_targets().scan("2015-04-20", vec![p1(30.0)]).scan("2015-04-28", vec![l1(12.0)]).project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "NE"), ("2015-04-28".into(), 1, "NE")]);
    assert_eq!(p.labels.best_response.map(|r| r.as_str()), Some("NE"));
    // Within a time point the latest evaluated listing counts; a later not_evaluated does not erase it.
    let p = two_targets()
        .scan("2015-04-20", vec![p1(50.0), l1(20.0)])
        .scan("2015-04-22", vec![p1(30.0), not_evaluated("L1", Liver)])
        .project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "SD")]);
}

#[test]
fn target_response_table() {
    // (time point listings, expected overall response) against S0 = 60, nadir 60.
    let cases: Vec<(&str, Vec<L>, &str)> = vec![
        ("exactly 30 % smaller is PR", vec![p1(30.0), l1(12.0)], "PR"),
        ("29 % smaller is SD", vec![p1(30.0), l1(12.6)], "SD"),
        ("absent counts as 0 in S", vec![p1(40.0), absent("L1", Liver)], "PR"),
        ("exactly +20 % and +12 mm is PD", vec![p1(52.0), l1(20.0)], "PD"),
        ("+19.8 % is SD", vec![p1(51.9), l1(20.0)], "SD"),
        ("PD by the sum even with a target not evaluated", vec![p1(80.0)], "PD"),
        ("a target unlisted, no PD: NE", vec![p1(40.0)], "NE"),
        ("a target without a diameter: NE", vec![p1(40.0), no_size("L1", Liver)], "NE"),
        ("a target not_evaluated: NE", vec![p1(40.0), not_evaluated("L1", Liver)], "NE"),
        ("all non-nodal targets absent: CR", vec![absent("P1", Lung), absent("L1", Liver)], "CR"),
        ("unequivocal progression of a target: PD, its diameter counts", vec![p1(30.0).up(), l1(10.0)], "PD"),
    ];
    for (name, lesions, expected) in cases {
        let p = two_targets().scan("2015-04-20", lesions).project(VIEW);
        assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, expected)], "{name}");
    }
}

#[test]
fn pd_needs_five_mm_over_the_nadir_as_well_as_twenty_percent() {
    // Baseline P1 20 (S0 20); tp1 15 (SD: 15 > 14); tp2 19: +26 % over nadir 15 but +4 mm: SD;
    // tp3 20: +5 mm and +33 %: PD.
    let p = base()
        .scan("2015-02-20", vec![p1(20.0)])
        .scan("2015-04-20", vec![p1(15.0)])
        .scan("2015-06-20", vec![p1(19.0)])
        .scan("2015-08-20", vec![p1(20.0)])
        .project(VIEW);
    assert_eq!(
        responses(&p),
        vec![("2015-04-20".into(), 1, "SD"), ("2015-06-20".into(), 1, "SD"), ("2015-08-20".into(), 1, "PD")]
    );
    assert_eq!(p.labels.pd1.map(|x| x.date), Some(d("2015-08-20")));
}

#[test]
fn nadir_only_from_time_points_where_every_target_was_evaluated() {
    // tp1: S = 10 with L1 unlisted (NE, not a nadir); tp2: S = 50 vs nadir 60: SD, not PD.
    let p = two_targets().scan("2015-04-20", vec![p1(10.0)]).scan("2015-06-20", vec![p1(30.0), l1(20.0)]).project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "NE"), ("2015-06-20".into(), 1, "SD")]);
    // When tp1 is complete (S = 15) it becomes the nadir and S = 50 is PD.
    let p = two_targets()
        .scan("2015-04-20", vec![p1(10.0), l1(5.0)])
        .scan("2015-06-20", vec![p1(30.0), l1(20.0)])
        .project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "PR"), ("2015-06-20".into(), 1, "PD")]);
}

#[test]
fn nodal_targets_count_as_complete_response_below_ten_mm() {
    let nodal = || base().scan("2015-02-20", vec![p1(40.0), lesion("N1", RegionalLn, 20.0)]);
    let cr = nodal().scan("2015-04-20", vec![absent("P1", Lung), lesion("N1", RegionalLn, 8.0)]).project(VIEW);
    assert_eq!(responses(&cr), vec![("2015-04-20".into(), 1, "CR")]);
    let pr = nodal().scan("2015-04-20", vec![absent("P1", Lung), lesion("N1", RegionalLn, 10.0)]).project(VIEW);
    assert_eq!(responses(&pr), vec![("2015-04-20".into(), 1, "PR")]);
}

#[test]
fn overall_response_with_non_targets() {
    // Baseline: P1 40 target, O1 bone unsized (non-target).
    let bl = || base().scan("2015-02-20", vec![p1(40.0), no_size("O1", Bone)]);
    let cases: Vec<(&str, Vec<L>, &str)> = vec![
        ("target CR, non-target absent: CR", vec![absent("P1", Lung), absent("O1", Bone)], "CR"),
        ("target CR, non-target present: PR", vec![absent("P1", Lung), no_size("O1", Bone)], "PR"),
        ("target CR, non-target not evaluated: PR", vec![absent("P1", Lung)], "PR"),
        ("target SD, non-target present: SD", vec![p1(38.0), no_size("O1", Bone)], "SD"),
        ("non-target unequivocal progression: PD", vec![p1(20.0), unequivocal("O1", Bone)], "PD"),
    ];
    for (name, lesions, expected) in cases {
        let p = bl().scan("2015-04-20", lesions).project(VIEW);
        assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, expected)], "{name}");
    }
}

#[test]
fn without_targets_the_non_targets_decide() {
    let bl = || base().scan("2015-02-20", vec![no_size("O1", Bone)]);
    let cases: Vec<(Vec<L>, &str)> = vec![
        (vec![no_size("O1", Bone)], "SD"), // non-CR/non-PD, shown as SD
        (vec![absent("O1", Bone)], "CR"),
        (vec![], "NE"),
        (vec![unequivocal("O1", Bone)], "PD"),
    ];
    for (lesions, expected) in cases {
        let p = bl().scan("2015-04-20", lesions).project(VIEW);
        assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, expected)]);
        assert_eq!(p.labels.baseline.expect("baseline").target_sum_mm, None);
    }
    // No targets and no non-targets (only a normal node): NE unless a new lesion.
    let bl = || base().scan("2015-02-20", vec![lesion("N1", RegionalLn, 8.0)]);
    let p = bl().scan("2015-04-20", vec![lesion("N1", RegionalLn, 8.0)]).project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "NE")]);
    let p = bl().scan("2015-04-20", vec![lesion("N1", RegionalLn, 8.0), lesion("H1", Liver, 5.0)]).project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "PD")]);
}

#[test]
fn new_lesions_and_new_nodes() {
    let cases: Vec<(&str, L, &str)> = vec![
        ("any new non-nodal lesion", lesion("H1", Liver, 3.0), "PD"),
        ("new unsized non-nodal lesion", no_size("H1", Liver), "PD"),
        ("new unequivocal lesion", unequivocal("H1", Bone), "PD"),
        ("new node of 9.9 mm is not new", lesion("N9", DistantLn, 9.9), "SD"),
        ("new node of 10 mm is new", lesion("N9", DistantLn, 10.0), "PD"),
        ("new node of unknown size is not new", no_size("N9", DistantLn), "SD"),
        ("new lesion listed absent is nothing", absent("H1", Liver), "SD"),
    ];
    for (name, new, expected) in cases {
        let p = two_targets().scan("2015-04-20", vec![p1(40.0), l1(20.0), new]).project(VIEW);
        assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, expected)], "{name}");
    }
}

#[test]
fn reappearance_after_cr_is_pd_but_not_before() {
    // CR then L1 back at 3 mm: PD (S = 3, not PD by the sum), L1 is the progressing lesion.
    let p = two_targets()
        .scan("2015-04-20", vec![absent("P1", Lung), absent("L1", Liver)])
        .scan("2015-06-20", vec![absent("P1", Lung), l1(3.0)])
        .project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "CR"), ("2015-06-20".into(), 1, "PD")]);
    let pd1 = p.labels.pd1.expect("pd1");
    assert_eq!(format!("{:?}", pd1.pattern), "OF");
    assert_eq!(pd1.sites, vec![Liver]);
    // Without an earlier CR, a reappearance counts back into S only: 30 + 4 = 34 vs nadir 30: PR.
    let p = two_targets()
        .scan("2015-04-20", vec![p1(30.0), absent("L1", Liver)])
        .scan("2015-06-20", vec![p1(30.0), l1(4.0)])
        .project(VIEW);
    assert_eq!(responses(&p), vec![("2015-04-20".into(), 1, "PR"), ("2015-06-20".into(), 1, "PR")]);
}

#[test]
fn best_overall_response_and_the_42_day_sd_rule() {
    // (time points as (date, P1 mm), BOR, objective_response)
    let cases: Vec<(Vec<(&str, f64)>, Option<&str>, Option<bool>)> = vec![
        (vec![], None, None),
        (vec![("2015-04-12", 38.0)], Some("NE"), Some(false)), // SD on day 41 does not count
        (vec![("2015-04-13", 38.0)], Some("SD"), Some(false)), // day 42 counts
        (vec![("2015-04-13", 38.0), ("2015-06-13", 20.0)], Some("PR"), Some(true)),
        (vec![("2015-03-20", 20.0)], Some("PR"), Some(true)), // PR counts whenever
        (vec![("2015-04-13", 60.0), ("2015-06-13", 10.0)], Some("PD"), Some(false)), // nothing after PD1
    ];
    for (tps, bor, orr) in cases {
        let mut tl = base().scan("2015-02-20", vec![p1(40.0)]);
        for (date, mm) in &tps {
            tl = tl.scan(date, vec![p1(*mm)]);
        }
        let l = tl.labels(VIEW);
        assert_eq!(l.best_response.map(|r| r.as_str()), bor, "{tps:?}");
        assert_eq!(l.objective_response, orr, "{tps:?}");
    }
}

#[test]
fn reported_response_that_differs_is_a_finding_and_the_computed_one_is_used() {
    let tl = two_targets().scan_reported("2015-04-20", vec![p1(38.0), l1(20.0)], ReportedResponse::PR);
    let scan = tl.last_id();
    let p = tl.project(VIEW);
    assert_eq!(p.labels.best_response.map(|r| r.as_str()), Some("SD"));
    let f: Vec<_> = p.findings.iter().filter(|f| f.kind == FindingKind::ReportedResponseMismatch).collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].event_id, scan);
    // Agreement raises nothing.
    let p = two_targets().scan_reported("2015-04-20", vec![p1(38.0), l1(20.0)], ReportedResponse::SD).project(VIEW);
    assert!(p.findings.is_empty(), "{:?}", p.findings);
}
