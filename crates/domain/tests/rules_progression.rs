//! domain.md "First progression (PD1), failure pattern and sites" and "Second progression (PD2)".
#![allow(clippy::type_complexity)]

mod rules_support;

use registry_domain::events::{RtModality, RtRegion};
use registry_domain::labels::{BrainAtProgression as Brain_, Extent, Pattern, SalvageCandidate as Sc};
use rules_support::*;

fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}

/// Baseline P1 40 (primary), L1 liver 20: S0 = 60.
fn two_targets() -> Tl {
    base().scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
}

#[test]
fn pd1_is_the_first_pd_time_point() {
    let l = two_targets()
        .scan("2015-04-20", vec![p1(30.0), lesion("L1", Liver, 10.0)])
        .scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
        .scan("2015-08-20", vec![p1(60.0), lesion("L1", Liver, 20.0)])
        .labels(VIEW);
    // Nadir 40 at 2015-04-20; S = 60 at 2015-06-20: +50 % and +20 mm.
    assert_eq!(l.pd1.map(|p| p.date), Some(d("2015-06-20")));
}

#[test]
fn pattern_sites_extent_brain_and_salvage_table() {
    // (name, baseline, PD time point, pattern, sites, extent, brain, salvage)
    type Case = (&'static str, Vec<L>, Vec<L>, Pattern, Vec<registry_domain::events::Organ>, Extent, Brain_, Sc);
    let bl = || vec![p1(40.0), lesion("L1", Liver, 20.0)];
    let cases: Vec<Case> = vec![
        (
            "growing liver metastasis: OF, SBRT-able",
            bl(),
            vec![p1(40.0), lesion("L1", Liver, 32.0)],
            Pattern::OF,
            vec![Liver],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::Sbrt,
        ),
        (
            "growing primary of 60 mm: OF primary only, too large for SBRT",
            bl(),
            vec![p1(60.0), lesion("L1", Liver, 20.0)],
            Pattern::OF,
            vec![Lung],
            Extent::PrimaryOnly,
            Brain_::None,
            Sc::None,
        ),
        (
            "new adrenal lesion only: DF",
            bl(),
            vec![p1(30.0), lesion("L1", Liver, 15.0), lesion("A1", Adrenal, 15.0)],
            Pattern::DF,
            vec![Adrenal],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::Sbrt,
        ),
        (
            "growing primary and a new small brain lesion: ODF, oligo brain, SRS",
            bl(),
            vec![p1(60.0), lesion("L1", Liver, 20.0), lesion("B5", Brain, 8.0)],
            Pattern::ODF,
            vec![Brain, Lung],
            Extent::PrimaryAndMetastasis,
            Brain_::Oligo,
            Sc::Srs,
        ),
        (
            "four new brain lesions: multiple, WBRT",
            bl(),
            vec![
                p1(40.0),
                lesion("L1", Liver, 20.0),
                lesion("B3", Brain, 5.0),
                lesion("B4", Brain, 5.0),
                lesion("B5", Brain, 5.0),
                lesion("B6", Brain, 5.0),
            ],
            Pattern::DF,
            vec![Brain],
            Extent::MetastasisOnly,
            Brain_::Multiple,
            Sc::Wbrt,
        ),
        (
            "one new brain lesion of 30 mm: multiple",
            bl(),
            vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("B3", Brain, 30.0)],
            Pattern::DF,
            vec![Brain],
            Extent::MetastasisOnly,
            Brain_::Multiple,
            Sc::Wbrt,
        ),
        (
            "one new brain lesion of unknown size fails the oligo test",
            bl(),
            vec![p1(40.0), lesion("L1", Liver, 20.0), no_size("B3", Brain)],
            Pattern::DF,
            vec![Brain],
            Extent::MetastasisOnly,
            Brain_::Multiple,
            Sc::Wbrt,
        ),
        (
            "a new lesion flagged primary is still a metastasis",
            bl(),
            vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("P2", Lung, 12.0).primary()],
            Pattern::DF,
            vec![Lung],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::Sbrt,
        ),
        (
            "five new extracranial lesions: too many for SBRT",
            bl(),
            vec![
                p1(40.0),
                lesion("L1", Liver, 20.0),
                lesion("H1", Liver, 5.0),
                lesion("H2", Liver, 5.0),
                lesion("H3", Liver, 5.0),
                lesion("O1", Bone, 5.0),
                lesion("O2", Bone, 5.0),
            ],
            Pattern::DF,
            vec![Bone, Liver],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::None,
        ),
        (
            "four new extracranial lesions of ≤ 50 mm: SBRT",
            bl(),
            vec![
                p1(40.0),
                lesion("L1", Liver, 20.0),
                lesion("H1", Liver, 50.0),
                lesion("H2", Liver, 5.0),
                lesion("O1", Bone, 5.0),
                lesion("O2", Bone, 5.0),
            ],
            Pattern::DF,
            vec![Bone, Liver],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::Sbrt,
        ),
        (
            "a new lesion of 50.5 mm: not SBRT",
            bl(),
            vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("H1", Liver, 50.5)],
            Pattern::DF,
            vec![Liver],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::None,
        ),
        (
            "unequivocal bone progression, size known from baseline: SBRT",
            vec![p1(40.0), lesion("O1", Bone, 20.0).non_target()],
            vec![p1(40.0), unequivocal("O1", Bone)],
            Pattern::OF,
            vec![Bone],
            Extent::MetastasisOnly,
            Brain_::None,
            Sc::Sbrt,
        ),
    ];
    for (name, baseline, at_pd, pattern, sites, extent, brain, salvage) in cases {
        let l = base().scan("2015-02-20", baseline).scan("2015-04-20", at_pd).labels(VIEW);
        let pd1 = l.pd1.unwrap_or_else(|| panic!("{name}: no pd1"));
        assert_eq!(pd1.date, d("2015-04-20"), "{name}");
        assert_eq!(pd1.pattern, pattern, "{name}");
        assert_eq!(pd1.sites, sites, "{name}");
        assert_eq!(pd1.extent, Some(extent), "{name}");
        assert_eq!(pd1.brain, brain, "{name}");
        assert_eq!(pd1.salvage_candidate, salvage, "{name}");
    }
}

#[test]
fn brain_progression_of_original_and_new_lesions_together() {
    // B1 baseline 10 grows to 16 (+60 %, +6 mm) with new B2 and B3: 3 lesions, largest 16: oligo.
    let l = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("B1", Brain, 10.0)])
        .scan(
            "2015-04-20",
            vec![p1(40.0), lesion("B1", Brain, 16.0), lesion("B2", Brain, 6.0), lesion("B3", Brain, 7.0)],
        )
        .labels(VIEW);
    let pd1 = l.pd1.expect("pd1");
    assert_eq!((pd1.pattern, pd1.brain, pd1.salvage_candidate), (Pattern::ODF, Brain_::Oligo, Sc::Srs));
    assert_eq!(pd1.sites, vec![Brain]);
}

#[test]
fn multiple_brain_progression_after_wbrt_is_not_a_wbrt_candidate() {
    let l = base()
        .rt("2015-01-05", RtModality::Wbrt, RtRegion::Brain)
        .scan("2015-02-20", vec![p1(40.0)])
        .scan(
            "2015-04-20",
            vec![
                p1(40.0),
                lesion("B3", Brain, 5.0),
                lesion("B4", Brain, 5.0),
                lesion("B5", Brain, 5.0),
                lesion("B6", Brain, 5.0),
            ],
        )
        .labels(VIEW);
    let pd1 = l.pd1.expect("pd1");
    assert_eq!((pd1.brain, pd1.salvage_candidate), (Brain_::Multiple, Sc::None));
}

#[test]
fn fallback_progressing_target_when_only_the_sum_grows() {
    // Five targets of 20 mm in five organs (S0 = 100). Each grows by 4 mm (+20 % but < 5 mm) and R1
    // by 4.5 mm: S = 120.5 ≥ 120 and +20.5 mm: target PD, no single target meets the rule; the one
    // with the largest growth (R1, pleura) is the progressing one.
    let bl = vec![
        p1(20.0),
        lesion("L1", Liver, 20.0),
        lesion("O1", Bone, 20.0),
        lesion("A1", Adrenal, 20.0),
        lesion("R1", Pleura, 20.0),
    ];
    let grown = |r1: f64| {
        vec![
            p1(24.0),
            lesion("L1", Liver, 24.0),
            lesion("O1", Bone, 24.0),
            lesion("A1", Adrenal, 24.0),
            lesion("R1", Pleura, r1),
        ]
    };
    let l = base().scan("2015-02-20", bl.clone()).scan("2015-04-20", grown(24.5)).labels(VIEW);
    let pd1 = l.pd1.expect("pd1");
    assert_eq!((pd1.pattern, pd1.sites.clone(), pd1.extent), (Pattern::OF, vec![Pleura], Some(Extent::MetastasisOnly)));
    // All grew equally: the tie goes to the lowest lesion_id (A1, adrenal).
    let l = base().scan("2015-02-20", bl).scan("2015-04-20", grown(24.0)).labels(VIEW);
    assert_eq!(l.pd1.expect("pd1").sites, vec![Adrenal]);
}

#[test]
fn pd2_in_a_segment_rebaselined_at_pd1() {
    // PD1 (DF) at 2015-06-20 with new A1 20. Segment 2 targets: P1 30, A1 20, L1 15: S0 = 65.
    // 2015-08-20 unchanged: SD. 2015-10-20 A1 40: S = 85 ≥ 78 and +20: PD2, A1 progressing.
    let tl = two_targets()
        .scan("2015-04-20", vec![p1(30.0), lesion("L1", Liver, 15.0)])
        .scan("2015-06-20", vec![p1(30.0), lesion("L1", Liver, 15.0), lesion("A1", Adrenal, 20.0)])
        .scan("2015-08-20", vec![p1(30.0), lesion("L1", Liver, 15.0), lesion("A1", Adrenal, 20.0)])
        .scan("2015-10-20", vec![p1(30.0), lesion("L1", Liver, 15.0), lesion("A1", Adrenal, 40.0)]);
    let p = tl.project(VIEW);
    assert_eq!(
        responses(&p),
        vec![
            ("2015-04-20".into(), 1, "SD"),
            ("2015-06-20".into(), 1, "PD"),
            ("2015-08-20".into(), 2, "SD"),
            ("2015-10-20".into(), 2, "PD"),
        ]
    );
    let pd1 = p.labels.pd1.expect("pd1");
    assert_eq!((pd1.date, pd1.pattern), (d("2015-06-20"), Pattern::DF));
    let pd2 = p.labels.pd2.expect("pd2");
    assert_eq!(pd2.date, d("2015-10-20"));
    assert_eq!((pd2.pattern, pd2.sites, pd2.extent), (Pattern::OF, vec![Adrenal], Some(Extent::MetastasisOnly)));
    assert_eq!((pd2.brain, pd2.salvage_candidate), (Brain_::None, Sc::Sbrt));
}

#[test]
fn segment_two_nadir_and_targets_come_from_pd1() {
    // Segment 1 nadir 15 (P1 10, L1 5). PD1 by a new A1 20. Segment 2 targets: A1 20 and P1 10
    // (L1 5 mm is not measurable: non-target): S0 = 30. Then P1 16: S = 36 = 1.2 × 30, +6: PD2,
    // primary only.
    let l = two_targets()
        .scan("2015-04-20", vec![p1(10.0), lesion("L1", Liver, 5.0)])
        .scan("2015-06-20", vec![p1(10.0), lesion("L1", Liver, 5.0), lesion("A1", Adrenal, 20.0)])
        .scan("2015-08-20", vec![p1(16.0), lesion("L1", Liver, 5.0), lesion("A1", Adrenal, 20.0)])
        .labels(VIEW);
    let pd2 = l.pd2.expect("pd2");
    assert_eq!((pd2.date, pd2.pattern, pd2.extent), (d("2015-08-20"), Pattern::OF, Some(Extent::PrimaryOnly)));
}

#[test]
fn lesion_absent_at_pd1_that_comes_back_is_new_in_segment_two() {
    let l = two_targets()
        .scan("2015-04-20", vec![p1(30.0), absent("L1", Liver), lesion("A1", Adrenal, 15.0)])
        .scan("2015-06-20", vec![p1(30.0), lesion("A1", Adrenal, 15.0), lesion("L1", Liver, 12.0)])
        .labels(VIEW);
    assert_eq!(l.pd1.as_ref().map(|p| p.pattern), Some(Pattern::DF));
    let pd2 = l.pd2.expect("pd2");
    assert_eq!((pd2.pattern, pd2.sites), (Pattern::DF, vec![Liver]));
}

#[test]
fn feeder_roles_are_not_honoured_in_segment_two() {
    // PD1 by new A1 12. At PD1 the feeder marks L1 non_target; segment 2 ignores it and chooses
    // P1 40, L1 30, A1 12 by RECIST (S0 = 82). L1 then grows to 60: S = 112 ≥ 98.4 and +30: PD2.
    // (Had the role been honoured, L1 would be a non-target and S = 52 would be SD.)
    let l = base()
        .scan("2015-02-20", vec![p1(40.0).target(), lesion("L1", Liver, 30.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 30.0).non_target(), lesion("A1", Adrenal, 12.0)])
        .scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 60.0), lesion("A1", Adrenal, 12.0)])
        .labels(VIEW);
    assert_eq!(l.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    let pd2 = l.pd2.expect("pd2");
    assert_eq!((pd2.date, pd2.pattern, pd2.sites), (d("2015-06-20"), Pattern::OF, vec![Liver]));
}

#[test]
fn pd2_salvage_candidate_looks_for_wbrt_before_pd2() {
    let l = two_targets()
        .scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)])
        .rt("2015-05-01", RtModality::Wbrt, RtRegion::Brain)
        .scan(
            "2015-06-20",
            vec![
                p1(40.0),
                lesion("L1", Liver, 20.0),
                lesion("A1", Adrenal, 15.0),
                lesion("B3", Brain, 5.0),
                lesion("B4", Brain, 5.0),
                lesion("B5", Brain, 5.0),
                lesion("B6", Brain, 5.0),
            ],
        )
        .labels(VIEW);
    assert_eq!(l.pd1.as_ref().map(|p| p.salvage_candidate), Some(Sc::Sbrt));
    let pd2 = l.pd2.expect("pd2");
    assert_eq!((pd2.brain, pd2.salvage_candidate), (Brain_::Multiple, Sc::None));
}

#[test]
fn organ_and_primary_flag_come_from_the_segment_baseline_listing() {
    // The feeder later lists L1 under "other" and P1 without the primary flag: sites and extent
    // still use the baseline listing (liver; primary).
    let l = two_targets().scan("2015-04-20", vec![lesion("P1", Lung, 60.0), lesion("L1", Other, 32.0)]).labels(VIEW);
    let pd1 = l.pd1.expect("pd1");
    assert_eq!(pd1.sites, vec![Liver, Lung]);
    assert_eq!(pd1.extent, Some(Extent::PrimaryAndMetastasis));
    // A new lesion's organ is that of its first listing.
    let l = two_targets()
        .scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("X1", Adrenal, 12.0)])
        .scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("X1", Bone, 30.0)])
        .labels(VIEW);
    assert_eq!(l.pd1.expect("pd1").sites, vec![Adrenal]);
}
