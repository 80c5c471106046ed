//! domain.md "Clocks" and "Radiotherapy and treatment flags": PFS1, PFS2, OS with their reasons,
//! negative days, RT flags, CBPD, next therapy, death date.
#![allow(clippy::type_complexity)]

mod rules_support;

use registry_domain::events::{Agent, FollowupStatus, RtModality, RtRegion};
use registry_domain::findings::FindingKind;
use registry_domain::labels::{ClockReason as R, NextTherapy};
use rules_support::*;

fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}
fn two_targets() -> Tl {
    base().scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
}
/// PD1 on 2015-04-20 by a new adrenal lesion.
fn pd1_on_apr20() -> Tl {
    two_targets().scan("2015-04-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)])
}
/// …and PD2 on 2015-08-20 by a new bone lesion (SD on 2015-06-20 in between).
fn pd2_on_aug20() -> Tl {
    pd1_on_apr20().scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)]).scan(
        "2015-08-20",
        vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0), lesion("O9", Bone, 8.0)],
    )
}

type ClockRow = (&'static str, &'static str, i64, bool, R);

#[test]
fn pfs1_table() {
    // (name, timeline, (start, end, days, event, reason))
    let sd_then_pd = || {
        two_targets()
            .scan("2015-04-20", vec![p1(38.0), lesion("L1", Liver, 20.0)])
            .scan("2015-06-20", vec![p1(60.0), lesion("L1", Liver, 20.0)])
    };
    let cases: Vec<(&str, Tl, ClockRow)> = vec![
        ("progression", sd_then_pd(), (T0, "2015-06-20", 110, true, R::Progression)),
        ("death before PD1", sd_then_pd().death("2015-05-01"), (T0, "2015-05-01", 60, true, R::Death)),
        (
            "death on the day of PD1: progression",
            sd_then_pd().death("2015-06-20"),
            (T0, "2015-06-20", 110, true, R::Progression),
        ),
        (
            "censored at the last non-NE time point",
            two_targets()
                .scan("2015-04-20", vec![p1(38.0), lesion("L1", Liver, 20.0)])
                .scan("2015-06-20", vec![p1(38.0)]),
            (T0, "2015-04-20", 49, false, R::CensoredLastAssessment),
        ),
        ("baseline only", two_targets(), (T0, T0, 0, false, R::CensoredNoAssessment)),
        (
            "only NE time points",
            two_targets().scan("2015-04-20", vec![p1(38.0)]),
            (T0, T0, 0, false, R::CensoredNoAssessment),
        ),
        ("no baseline", base().scan("2015-04-20", vec![p1(38.0)]), (T0, T0, 0, false, R::NoBaseline)),
        ("no baseline, death counts", base().death("2015-04-01"), (T0, "2015-04-01", 30, true, R::Death)),
        ("death before T0: negative days", base().death("2015-02-01"), (T0, "2015-02-01", -29, true, R::Death)),
    ];
    for (name, tl, (start, end, days, event, reason)) in cases {
        let c = tl.labels(VIEW).pfs1.unwrap_or_else(|| panic!("{name}: pfs1"));
        assert_eq!((c.start, c.end, c.days, c.event, c.reason), (d(start), d(end), days, event, reason), "{name}");
    }
}

#[test]
fn pfs2_table() {
    let cases: Vec<(&str, Tl, Option<ClockRow>)> = vec![
        ("no PD1: null", two_targets(), None),
        (
            "PD1 only: censored at PD1",
            pd1_on_apr20(),
            Some(("2015-04-20", "2015-04-20", 0, false, R::CensoredNoAssessment)),
        ),
        (
            "censored at the last non-NE time point after PD1",
            pd1_on_apr20().scan("2015-06-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)]),
            Some(("2015-04-20", "2015-06-20", 61, false, R::CensoredLastAssessment)),
        ),
        ("PD2", pd2_on_aug20(), Some(("2015-04-20", "2015-08-20", 122, true, R::Progression))),
        (
            "death before PD2",
            pd2_on_aug20().death("2015-07-01"),
            Some(("2015-04-20", "2015-07-01", 72, true, R::Death)),
        ),
    ];
    for (name, tl, expected) in cases {
        let c = tl.labels(VIEW).pfs2.map(|c| (c.start, c.end, c.days, c.event, c.reason));
        let expected = expected.map(|(s, e, n, ev, r)| (d(s), d(e), n, ev, r));
        assert_eq!(c, expected, "{name}");
    }
}

#[test]
fn death_before_a_clock_start_is_kept_with_a_finding() {
    let tl = base().death("2015-02-01");
    let death = tl.last_id();
    let p = tl.project(VIEW);
    assert_eq!(p.labels.pfs1.map(|c| c.days), Some(-29));
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::DeathBeforeClockStart && f.event_id == death));
    // A scan after that death is flagged too.
    let p = base().death("2015-02-01").scan("2015-02-20", vec![p1(40.0)]).project(VIEW);
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::ScanAfterDeath));
}

#[test]
fn os_table() {
    let cases: Vec<(&str, Tl, Option<ClockRow>)> = vec![
        ("death", base().death("2016-01-01"), Some(("2014-12-01", "2016-01-01", 396, true, R::Death))),
        (
            "censored at the last clinical event, lost-to-follow-up records aside",
            base().followup("2016-02-01", FollowupStatus::Alive).followup("2016-05-01", FollowupStatus::LostToFollowUp),
            Some(("2014-12-01", "2016-02-01", 427, false, R::CensoredLastKnownAlive)),
        ),
        ("incomplete: null", Tl::new().crizotinib(T0).death("2016-01-01"), None),
    ];
    for (name, tl, expected) in cases {
        let c = tl.labels(VIEW).os.map(|c| (c.start, c.end, c.days, c.event, c.reason));
        assert_eq!(c, expected.map(|(s, e, n, ev, r)| (d(s), d(e), n, ev, r)), "{name}");
    }
    // A scan before diagnosis is accepted and flagged.
    let p = base().scan("2014-11-01", vec![p1(40.0)]).project(VIEW);
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::ScanBeforeDiagnosis));
}

#[test]
fn prior_radiotherapy_flags() {
    let l = two_targets()
        .rt("2015-01-05", RtModality::Wbrt, RtRegion::Brain)
        .rt("2015-01-20", RtModality::Srs, RtRegion::Brain)
        .rt("2015-02-01", RtModality::Conventional, RtRegion::Thorax)
        .labels(VIEW);
    assert_eq!((l.rt.prior, l.rt.prior_brain, l.rt.prior_extracranial), (Some(true), Some(true), Some(true)));
    assert_eq!(l.rt.prior_brain_modalities, vec![RtModality::Srs, RtModality::Wbrt]);
    assert!(l.rt.any);

    let l = two_targets().rt("2015-01-20", RtModality::Srs, RtRegion::Brain).labels(VIEW);
    assert_eq!((l.rt.prior, l.rt.prior_brain, l.rt.prior_extracranial), (Some(true), Some(true), Some(false)));

    // A course on T0 is not prior.
    let l = two_targets().rt(T0, RtModality::Sbrt, RtRegion::Bone).labels(VIEW);
    assert_eq!(
        (l.rt.prior, l.rt.prior_brain, l.rt.prior_extracranial, l.rt.any),
        (Some(false), Some(false), Some(false), true)
    );
    assert!(l.rt.prior_brain_modalities.is_empty());

    let l = two_targets().labels(VIEW);
    assert!(!l.rt.any);
}

#[test]
fn salvage_radiotherapy_is_from_pd1_up_to_pd2() {
    // (courses, salvage, modalities)
    let cases: Vec<(Vec<(&str, RtModality, RtRegion)>, Option<bool>, Vec<RtModality>)> = vec![
        (vec![], Some(false), vec![]),
        (vec![("2015-04-20", RtModality::Srs, RtRegion::Brain)], Some(true), vec![RtModality::Srs]),
        (vec![("2015-04-19", RtModality::Srs, RtRegion::Brain)], Some(false), vec![]),
        (vec![("2015-08-20", RtModality::Sbrt, RtRegion::Bone)], Some(false), vec![]),
        (
            vec![
                ("2015-08-19", RtModality::Sbrt, RtRegion::Bone),
                ("2015-05-01", RtModality::Conventional, RtRegion::Thorax),
            ],
            Some(true),
            vec![RtModality::Conventional, RtModality::Sbrt],
        ),
    ];
    for (courses, salvage, modalities) in cases {
        let mut tl = pd2_on_aug20();
        for (date, m, r) in &courses {
            tl = tl.rt(date, *m, *r);
        }
        let l = tl.labels(VIEW);
        assert_eq!((l.rt.salvage, l.rt.salvage_modalities.clone()), (salvage, modalities), "{courses:?}");
    }
    // Without PD2: up to the view date.
    let l = pd1_on_apr20().rt("2016-01-01", RtModality::Wbrt, RtRegion::Brain).labels(VIEW);
    assert_eq!(l.rt.salvage, Some(true));
    // Without PD1: null.
    let l = two_targets().rt("2016-01-01", RtModality::Wbrt, RtRegion::Brain).labels(VIEW);
    assert_eq!((l.rt.salvage, l.rt.salvage_modalities.len()), (None, 0));
}

#[test]
fn crizotinib_beyond_progression_table() {
    // PD1 2015-04-20; PD1 + 21 days = 2015-05-11.
    let cases: Vec<(&str, Tl, &str, Option<bool>)> = vec![
        ("still on crizotinib at PD1 + 21", pd1_on_apr20(), "2015-05-11", Some(true)),
        ("too early to tell", pd1_on_apr20(), "2015-05-10", None),
        ("stopped on PD1 + 21", pd1_on_apr20().stop("2015-05-11", Agent::Crizotinib, "crizo"), VIEW, Some(false)),
        ("stopped on PD1 + 22", pd1_on_apr20().stop("2015-05-12", Agent::Crizotinib, "crizo"), VIEW, Some(true)),
        ("stopped on PD1", pd1_on_apr20().stop("2015-04-20", Agent::Crizotinib, "crizo"), VIEW, Some(false)),
        ("died by PD1 + 21", pd1_on_apr20().death("2015-05-01"), VIEW, Some(false)),
        ("not on crizotinib at PD1", pd1_on_apr20().stop("2015-04-01", Agent::Crizotinib, "crizo"), VIEW, Some(false)),
        (
            "restarted in a new course before PD1",
            pd1_on_apr20().stop("2015-04-01", Agent::Crizotinib, "crizo").start("2015-04-10", Agent::Crizotinib, "c2"),
            VIEW,
            Some(true),
        ),
        (
            "restarted under the same course id: a start pairs with the earliest stop on or after it",
            pd1_on_apr20().stop("2015-04-01", Agent::Crizotinib, "crizo").start(
                "2015-04-10",
                Agent::Crizotinib,
                "crizo",
            ),
            VIEW,
            Some(true),
        ),
        (
            "latest started course active at PD1 decides",
            pd1_on_apr20().start("2015-04-10", Agent::Crizotinib, "c2").stop("2015-04-25", Agent::Crizotinib, "c2"),
            VIEW,
            Some(false),
        ),
        ("no PD1: null", two_targets(), VIEW, None),
    ];
    for (name, tl, as_of, expected) in cases {
        assert_eq!(tl.labels(as_of).cbpd, expected, "{name}");
    }
}

#[test]
fn next_therapy_is_the_first_non_crizotinib_start_on_or_after_pd1() {
    let cases: Vec<(&str, Tl, Option<(&str, Agent)>)> = vec![
        ("none", pd1_on_apr20(), None),
        (
            "alectinib after PD1",
            pd1_on_apr20().start("2015-05-01", Agent::Alectinib, "a"),
            Some(("2015-05-01", Agent::Alectinib)),
        ),
        (
            "started on PD1",
            pd1_on_apr20().start("2015-04-20", Agent::Chemotherapy, "c"),
            Some(("2015-04-20", Agent::Chemotherapy)),
        ),
        ("before PD1 does not count", pd1_on_apr20().start("2015-04-01", Agent::Chemotherapy, "c"), None),
        ("crizotinib does not count", pd1_on_apr20().start("2015-05-01", Agent::Crizotinib, "c2"), None),
        (
            "the first one",
            pd1_on_apr20().start("2015-06-01", Agent::Brigatinib, "b").start("2015-05-01", Agent::Ceritinib, "c"),
            Some(("2015-05-01", Agent::Ceritinib)),
        ),
        ("no PD1: null", two_targets().start("2015-05-01", Agent::Alectinib, "a"), None),
    ];
    for (name, tl, expected) in cases {
        let expected = expected.map(|(date, agent)| NextTherapy { date: d(date), agent });
        assert_eq!(tl.labels(VIEW).next_therapy, expected, "{name}");
    }
}

#[test]
fn death_date_is_the_counted_death() {
    assert_eq!(base().death("2016-01-01").labels(VIEW).death_date, Some(d("2016-01-01")));
    assert_eq!(base().labels(VIEW).death_date, None);
    // Shown even without enrolment or T0.
    assert_eq!(Tl::new().death("2016-01-01").labels(VIEW).death_date, Some(d("2016-01-01")));
}
