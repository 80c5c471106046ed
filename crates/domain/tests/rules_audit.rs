//! Independent audit of domain.md: hand-worked timelines written from the spec alone.
//! Line numbers "dm:N" refer to /work/shared/spec/domain.md.
#![allow(clippy::type_complexity)]

mod audit_support;
mod rules_support;

use chrono::{TimeZone, Utc};
use registry_domain::alerts::{alerts_between, followup_overdue, AlertKind};
use registry_domain::config::Config;
use registry_domain::events::{Agent, FollowupStatus, RtModality, RtRegion};
use registry_domain::findings::FindingKind;
use registry_domain::labels::{
    BrainAtProgression as Br, BrainClass, ClockReason as R, Extent, Pattern, Response, SalvageCandidate as Sc,
};
use registry_domain::view::View;
use audit_support::*;
use rules_support::*;

// dm:76-77 "PD when S ≥ 1.2 × nadir and S − nadir ≥ 5 mm"; dm:73 nadir = smallest S among S0 and
// earlier complete time points; dm:78 "PR when S ≤ 0.7 × S0". dm:104-106 fallback target.
// S0 = 30 + 20 = 50. TP1 15+10 = 25 ≤ 35 → PR, nadir 25. TP2 18+12 = 30 = 1.2×25 and +5 → PD.
// No lesion grew ≥ 5 mm over its own nadir → fallback: P1 (+3) beats L1 (+2) → OF, lung,
// primary_only, brain none, SBRT (1 extracranial lesion, 18 ≤ 50). PFS1 110 days, progression.
#[test]
fn audit_pd_at_exactly_20_percent_and_5_mm_over_the_nadir() {
    let tl = base()
        .scan("2015-02-20", vec![p1(30.0), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![p1(15.0), lesion("L1", Liver, 10.0)])
        .scan("2015-06-20", vec![p1(18.0), lesion("L1", Liver, 12.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PR"), tp("2015-06-20", 1, "PD")]);
    let l = tl.labels(VIEW);
    assert_eq!(l.best_response, Some(Response::PR));
    assert_eq!(l.objective_response, Some(true));
    assert_eq!(pd1(&l), pd("2015-06-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::Sbrt));
    assert_eq!(ck(&l.pfs1), clock(T0, "2015-06-20", 110, true, R::Progression));
    // Just under: 17.9 + 12 = 29.9 < 30 → not PD; 29.9 ≤ 35 → still PR (PR is against S0, not nadir).
    let tl = base()
        .scan("2015-02-20", vec![p1(30.0), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![p1(15.0), lesion("L1", Liver, 10.0)])
        .scan("2015-06-20", vec![p1(17.9), lesion("L1", Liver, 12.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PR"), tp("2015-06-20", 1, "PR")]);
}

// dm:76-78 "PD ... (even if some targets were not evaluated); else NE when a target was not evaluated".
// S0 = 60, L1 unlisted. P1 75 → S 75 ≥ 72, +15 → PD (OF, lung, 75 > 50 → no SBRT).
// P1 70 → S 70 < 72 → NE; BOR NE (time points exist, none counts); PFS1 censored_no_assessment.
#[test]
fn audit_sum_pd_with_a_target_not_evaluated() {
    let bl = || base().scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)]);
    let l = bl().scan("2015-04-20", vec![p1(75.0)]).labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::None));
    let tl = bl().scan("2015-04-20", vec![p1(70.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "NE")]);
    let l = tl.labels(VIEW);
    assert_eq!(l.best_response, Some(Response::NE));
    assert_eq!(l.objective_response, Some(false));
    assert_eq!(ck(&l.pfs1), clock(T0, T0, 0, false, R::CensoredNoAssessment));
}

// dm:76 "CR when every non-nodal target is absent and every nodal target < 10 mm; else PD when ..."
// CR is tested first. N1 (node 20, the only target): 4 → CR; then 9.5: S 9.5 ≥ 1.2×4 and +5.5,
// but every nodal target < 10 → target CR → overall CR (no non-targets). No PD1, BOR CR.
#[test]
fn audit_nodal_cr_is_tested_before_sum_growth() {
    let tl = base()
        .scan("2015-02-20", vec![lesion("N1", RegionalLn, 20.0)])
        .scan("2015-04-20", vec![lesion("N1", RegionalLn, 4.0)])
        .scan("2015-06-20", vec![lesion("N1", RegionalLn, 9.5)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "CR"), tp("2015-06-20", 1, "CR")]);
    let l = tl.labels(VIEW);
    assert!(l.pd1.is_none());
    assert_eq!(l.best_response, Some(Response::CR));
}

// dm:90-91 "Else CR when target CR and non-target CR ... Else PR when target CR or PR and non-target
// not PD. Else SD when target SD." P1 target 30, O1 bone without size (non-target).
// TP1 P1 absent, O1 present → PR. TP2 P1 absent, O1 unlisted (NE) → PR. TP3 both absent → CR.
// Separate: P1 28 (SD), O1 unlisted → SD.
#[test]
fn audit_overall_response_combinations_with_non_targets() {
    let tl = base()
        .scan("2015-02-20", vec![p1(30.0), no_size("O1", Bone)])
        .scan("2015-04-20", vec![absent("P1", Lung).primary(), no_size("O1", Bone)])
        .scan("2015-05-20", vec![absent("P1", Lung).primary()])
        .scan("2015-06-20", vec![absent("P1", Lung).primary(), absent("O1", Bone)]);
    assert_eq!(
        resp(&tl, "2015-07-01"),
        vec![tp("2015-04-20", 1, "PR"), tp("2015-05-20", 1, "PR"), tp("2015-06-20", 1, "CR")]
    );
    let tl = base()
        .scan("2015-02-20", vec![p1(30.0), no_size("O1", Bone)])
        .scan("2015-04-20", vec![p1(28.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "SD")]);
}

// dm:92 "With no targets: CR, non-CR/non-PD (counted as SD) ..."; dm:95 "An SD (or non-CR/non-PD)
// less than 42 days after T0 does not count. BOR is NE when time points exist but none counts".
// T0 + 41 = 2015-04-12, T0 + 42 = 2015-04-13.
#[test]
fn audit_no_targets_non_cr_non_pd_counts_for_bor_from_day_42() {
    let tl = base()
        .scan("2015-02-20", vec![no_size("O1", Bone)])
        .scan("2015-04-12", vec![no_size("O1", Bone)])
        .scan("2015-04-13", vec![]);
    // 04-12 and 04-13 form one time point (≤ 7 days), dated 04-12: day 41 → BOR NE.
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-12", 1, "SD")]);
    assert_eq!(tl.labels(VIEW).best_response, Some(Response::NE));
    let tl = base().scan("2015-02-20", vec![no_size("O1", Bone)]).scan("2015-04-13", vec![no_size("O1", Bone)]);
    let l = tl.labels(VIEW);
    assert_eq!(l.best_response, Some(Response::SD));
    assert_eq!(l.objective_response, Some(false));
    assert!(l.baseline.as_ref().expect("audit timeline").target_sum_mm.is_none());
}

// dm:94 "BOR: the best time-point response from T0 up to and including PD1 (CR > PR > SD > PD > NE)".
// SD at day 18 does not count; PD at 04-20 (50 vs 40: +25 %, +10); CR at 06-20 is segment 2 → BOR PD.
// dm:133-134 PFS2: censored at the last non-NE time point after PD1 (06-20, CR in segment 2): 61 days.
#[test]
fn audit_bor_stops_at_pd1_and_pfs2_censoring() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-03-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(50.0)])
        .scan("2015-06-20", vec![absent("P1", Lung).primary()]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-03-20", 1, "SD"), tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "CR")]
    );
    let l = tl.labels(VIEW);
    assert_eq!(l.best_response, Some(Response::PD));
    assert_eq!(l.objective_response, Some(false));
    assert!(l.pd2.is_none());
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-06-20", 61, false, R::CensoredLastAssessment));
}

// dm:67-70 "a time point starts at the earliest ungrouped study and takes every study dated at most
// 7 days after it. Its date is its first study's date; each lesion's latest listing ... counts".
// A 06-01 (P1 42), B 06-07 (P1 60), C 06-13 (P1 30): groups {A,B} (P1 60 → PD vs 40, dated 06-01)
// and {C}, not one chained group. Segment 2: S0 = 60, C: 30 ≤ 42 → PR.
#[test]
fn audit_time_points_group_greedily_and_take_the_first_study_date() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-06-01", vec![p1(42.0)])
        .scan("2015-06-07", vec![p1(60.0)])
        .scan("2015-06-13", vec![p1(30.0)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-06-01", 1, "PD"), tp("2015-06-13", 2, "PR")]);
    assert_eq!(tl.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-06-01")));
}

// dm:10-12 canonical order (occurred_on, type rank, recorded_at, event_id); dm:69 latest listing.
// Two studies on 04-20: X (written first, lower event_id) recorded 20:00Z lists P1 60; Y recorded
// 08:00Z lists P1 40. X is later by recorded_at → P1 60 counts → PD (vs 40: +50 %, +20).
#[test]
fn audit_same_day_studies_ordered_by_recorded_at_before_event_id() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let tl = recorded_at(tl, "2015-04-20T20:00:00Z");
    let tl = tl.scan("2015-04-20", vec![p1(40.0)]);
    let tl = recorded_at(tl, "2015-04-20T08:00:00Z");
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD")]);
    // recorded_at compares as an instant: 21:00+02:00 = 19:00Z is before 20:00Z → X still later.
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let tl = recorded_at(tl, "2015-04-20T20:00:00Z");
    let tl = tl.scan("2015-04-20", vec![p1(40.0)]);
    let tl = recorded_at(tl, "2015-04-20T21:00:00+02:00");
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD")]);
}

// dm:13-15 "a lesion's size at a time point is its diameter listed there, else its latest measured
// diameter in any earlier study in view"; dm:84-85 "a new node needs a known short axis ≥ 10 mm".
// N9 measured 12 on 2015-01-01 (outside the baseline window), listed without size at 04-20 → new
// node of size 12 → PD, DF, regional_ln, SBRT. Without the early study: no size → not new → SD.
#[test]
fn audit_new_node_size_from_a_study_before_the_baseline_window() {
    let tl = Tl::new()
        .enrolled_dx("2015-01-10", "2014-12-01")
        .scan("2015-01-01", vec![lesion("N9", RegionalLn, 12.0)])
        .crizotinib(T0)
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), no_size("N9", RegionalLn)]);
    let l = tl.labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![RegionalLn], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0), no_size("N9", RegionalLn)]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "SD")]);
}

// dm:103 "Progressing original lesions at PD1: reference lesions that grew ≥ 20% and ≥ 5 mm over
// their own nadir"; dm:107-108 ODF when both. O1 bone 8 (non-measurable → non-target) grows to 14
// (+75 %, +6) while new adrenal A1 15 appears → ODF, sites [adrenal, bone], SBRT (14, 15 ≤ 50).
#[test]
fn audit_growing_non_target_is_a_progressing_original_lesion() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("O1", Bone, 8.0)])
        .scan(
            "2015-04-20",
            vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("O1", Bone, 14.0), lesion("A1", Adrenal, 15.0)],
        )
        .labels(VIEW);
    assert_eq!(
        pd1(&l),
        pd("2015-04-20", Pattern::ODF, vec![Adrenal, Bone], Extent::MetastasisOnly, Br::None, Sc::Sbrt)
    );
}

// dm:104-106 "When target PD holds by the sum and no target meets this, the measured target with
// the largest growth over its own nadir ... is the progressing one."
// S0 = 60; TP: P1 47.5 (+18.75 %), L1 24.5 (+4.5 mm) → neither meets; S = 72 = 1.2 × 60, +12 → target
// PD. No *target* meets → fallback P1 (+7.5 > +4.5). O1 (non-target) 8 → 14 also progresses.
// → OF, sites [bone, lung], primary_and_metastasis, SBRT (47.5, 14 ≤ 50).
#[test]
fn audit_fallback_target_applies_even_when_a_non_target_progresses() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0), lesion("O1", Bone, 8.0)])
        .scan("2015-04-20", vec![p1(47.5), lesion("L1", Liver, 24.5), lesion("O1", Bone, 14.0)])
        .labels(VIEW);
    assert_eq!(
        pd1(&l),
        pd("2015-04-20", Pattern::OF, vec![Bone, Lung], Extent::PrimaryAndMetastasis, Br::None, Sc::Sbrt)
    );
}

// dm:113-114 "Brain at PD1: the progressing brain lesions (original and new) ... oligo when ≤ 3 and
// the largest < 30 mm". B1 12 and B2 14 are stable; new B3 6 and B4 7 → 2 progressing brain lesions
// → oligo → SRS; DF, [brain]. Baseline: 2 brain lesions, largest 14 → bbm oligo.
#[test]
fn audit_brain_at_pd1_counts_only_progressing_brain_lesions() {
    let bl = vec![p1(40.0), lesion("B1", Brain, 12.0), lesion("B2", Brain, 14.0)];
    let tl = base().scan("2015-02-20", bl.clone()).scan(
        "2015-04-20",
        vec![p1(40.0), lesion("B1", Brain, 12.0), lesion("B2", Brain, 14.0), lesion("B3", Brain, 6.0), lesion("B4", Brain, 7.0)],
    );
    let l = tl.labels(VIEW);
    assert_eq!(l.baseline.as_ref().expect("audit timeline").bbm_class, Some(BrainClass::Oligo));
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Brain], Extent::MetastasisOnly, Br::Oligo, Sc::Srs));
}

// dm:113-116 oligo ≤ 3 and largest < 30; wbrt when multiple and no WBRT before PD1.
#[test]
fn audit_brain_oligo_boundaries() {
    let bl = || base().scan("2015-02-20", vec![p1(40.0)]);
    let case = |news: Vec<L>| {
        let mut v = vec![p1(40.0)];
        v.extend(news);
        let l = bl().scan("2015-04-20", v).labels(VIEW);
        let p = l.pd1.expect("pd1");
        (p.brain, p.salvage_candidate)
    };
    let b = |id: &str, mm: f64| lesion(id, Brain, mm);
    assert_eq!(case(vec![b("B1", 10.0), b("B2", 20.0), b("B3", 29.9)]), (Br::Oligo, Sc::Srs));
    assert_eq!(case(vec![b("B1", 10.0), b("B2", 20.0), b("B3", 30.0)]), (Br::Multiple, Sc::Wbrt));
    assert_eq!(case(vec![b("B1", 5.0), b("B2", 5.0), b("B3", 5.0), b("B4", 5.0)]), (Br::Multiple, Sc::Wbrt));
}

// dm:13-15 sizes fall back to the latest earlier measurement, unknown size fails every size test;
// dm:113 "sizes from their listing at PD1 or the latest known before".
// B1 brain 35 at baseline, unequivocal (no size) at PD1 → size 35 → multiple → WBRT (OF, [brain]).
// B1 20 → oligo → SRS. A new brain lesion listed unequivocal without any size → multiple → WBRT, DF.
#[test]
fn audit_brain_sizes_fall_back_to_the_latest_known_size() {
    let run = |mm: f64| {
        base()
            .scan("2015-02-20", vec![p1(40.0), lesion("B1", Brain, mm)])
            .scan("2015-04-20", vec![p1(40.0), unequivocal("B1", Brain)])
            .labels(VIEW)
    };
    assert_eq!(pd1(&run(35.0)), pd("2015-04-20", Pattern::OF, vec![Brain], Extent::MetastasisOnly, Br::Multiple, Sc::Wbrt));
    assert_eq!(pd1(&run(20.0)), pd("2015-04-20", Pattern::OF, vec![Brain], Extent::MetastasisOnly, Br::Oligo, Sc::Srs));
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), unequivocal("B7", Brain)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Brain], Extent::MetastasisOnly, Br::Multiple, Sc::Wbrt));
}

// dm:116-117 "`sbrt` when brain is none and 1–4 extracranial lesions progress (original or new), each
// ≤ 50 mm at PD1"; dm:111-112 extent; dm:109 sites sorted.
// P1 40 → 50 (progressing, 50 ≤ 50) + new A1 20, O1 15, H1 30 → 4 lesions → SBRT, ODF,
// [adrenal, bone, liver, lung], primary_and_metastasis. A 5th (H2 12) → none. P1 50.5 → none.
#[test]
fn audit_sbrt_candidate_boundaries() {
    let run = |p: f64, extra: bool| {
        let mut v = vec![p1(p), lesion("A1", Adrenal, 20.0), lesion("O1", Bone, 15.0), lesion("H1", Liver, 30.0)];
        if extra {
            v.push(lesion("H2", Liver, 12.0));
        }
        base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", v).labels(VIEW)
    };
    let sites = vec![Adrenal, Bone, Liver, Lung];
    assert_eq!(pd1(&run(50.0, false)), pd("2015-04-20", Pattern::ODF, sites.clone(), Extent::PrimaryAndMetastasis, Br::None, Sc::Sbrt));
    assert_eq!(pd1(&run(50.0, true)).map(|p| p.5), Some(Sc::None));
    assert_eq!(pd1(&run(50.5, false)).map(|p| p.5), Some(Sc::None));
}

// dm:79-83 unequivocal progression of a non-target → PD; dm:13-15 size fallback for the SBRT test.
// O1 bone 8 at baseline, unequivocal at PD1 → OF, [bone], SBRT (size 8). O1 without any size → none.
#[test]
fn audit_unequivocal_non_target_sbrt_size_fallback() {
    let run = |o1: L| {
        base()
            .scan("2015-02-20", vec![p1(40.0), o1])
            .scan("2015-04-20", vec![p1(40.0), unequivocal("O1", Bone)])
            .labels(VIEW)
    };
    assert_eq!(
        pd1(&run(lesion("O1", Bone, 8.0))),
        pd("2015-04-20", Pattern::OF, vec![Bone], Extent::MetastasisOnly, Br::None, Sc::Sbrt)
    );
    assert_eq!(pd1(&run(no_size("O1", Bone))).map(|p| p.5), Some(Sc::None));
}

// dm:115 "`wbrt` when brain is multiple and no WBRT course before PD1"; dm:144 salvage_rt in [PD1, PD2).
// WBRT on the PD1 day is not before PD1 → WBRT candidate; it is salvage RT. WBRT the day before →
// not a candidate (falls to none), and not salvage.
#[test]
fn audit_wbrt_on_the_pd1_day_is_not_before_pd1() {
    let run = |rt_date: &str| {
        base()
            .scan("2015-02-20", vec![p1(40.0)])
            .rt(rt_date, RtModality::Wbrt, RtRegion::Brain)
            .scan(
                "2015-04-20",
                vec![p1(40.0), lesion("B1", Brain, 5.0), lesion("B2", Brain, 5.0), lesion("B3", Brain, 5.0), lesion("B4", Brain, 5.0)],
            )
            .labels(VIEW)
    };
    let l = run("2015-04-20");
    assert_eq!(l.pd1.as_ref().map(|p| p.salvage_candidate), Some(Sc::Wbrt));
    assert_eq!(l.rt.salvage, Some(true));
    assert_eq!(l.rt.salvage_modalities, vec![RtModality::Wbrt]);
    let l = run("2015-04-19");
    assert_eq!(l.pd1.as_ref().map(|p| p.salvage_candidate), Some(Sc::None));
    assert_eq!(l.rt.salvage, Some(false));
    assert_eq!(l.rt.prior, Some(false));
}

// dm:142-145 prior_rt: occurred_on < T0; modalities "(sorted set)"; salvage in [PD1, PD2).
// Prior: SRS 01-20, WBRT 02-01 (brain); conventional thorax on T0 is not prior → prior_extracranial
// false. Salvage after PD1 04-20: SRS, SBRT, conventional → sorted by name [conventional, sbrt, srs].
#[test]
fn audit_rt_flags_boundaries_and_sorted_modalities() {
    let l = base()
        .rt("2015-01-20", RtModality::Srs, RtRegion::Brain)
        .rt("2015-02-01", RtModality::Wbrt, RtRegion::Brain)
        .rt(T0, RtModality::Conventional, RtRegion::Thorax)
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .rt("2015-05-01", RtModality::Srs, RtRegion::Brain)
        .rt("2015-05-02", RtModality::Sbrt, RtRegion::Bone)
        .rt("2015-05-03", RtModality::Conventional, RtRegion::Thorax)
        .labels(VIEW);
    assert_eq!(l.rt.prior, Some(true));
    assert_eq!(l.rt.prior_brain, Some(true));
    assert_eq!(l.rt.prior_brain_modalities, vec![RtModality::Srs, RtModality::Wbrt]);
    assert_eq!(l.rt.prior_extracranial, Some(false));
    assert_eq!(l.rt.salvage, Some(true));
    assert_eq!(l.rt.salvage_modalities, vec![RtModality::Conventional, RtModality::Sbrt, RtModality::Srs]);
}

// dm:144 salvage window [PD1, PD2). PD1 04-20 (40 → 50), segment 2 S0 = 50, PD2 06-20 (65: +30 %,
// +15) → OF, lung, primary_only, 65 > 50 → none. SBRT on PD1 day counts, SRS on PD2 day does not.
// PFS2 04-20 → 06-20, 61 days, progression.
#[test]
fn audit_salvage_window_and_pd2() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(50.0)])
        .rt("2015-04-20", RtModality::Sbrt, RtRegion::Thorax)
        .scan("2015-06-20", vec![p1(65.0)])
        .rt("2015-06-20", RtModality::Srs, RtRegion::Brain)
        .labels(VIEW);
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::OF, vec![Lung], Extent::PrimaryOnly, Br::None, Sc::None));
    assert_eq!(l.rt.salvage_modalities, vec![RtModality::Sbrt]);
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-06-20", 61, true, R::Progression));
}

// dm:120-124 segment 2 reference = segment 1's set + new lesions of PD1; targets by RECIST among those
// present with a diameter at PD1; S0 = PD1 measurements. A1 (new at PD1, 15) is a segment-2 target,
// not new again. S0₂ = 55; 06-20 unchanged → SD; 08-20 A1 26 → S 66 = 1.2×55, +11 → PD2, OF,
// [adrenal], metastasis_only, SBRT. PFS2 122 days.
#[test]
fn audit_new_lesion_of_pd1_is_a_reference_lesion_in_segment_two() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("A1", Adrenal, 15.0)])
        .scan("2015-06-20", vec![p1(40.0), lesion("A1", Adrenal, 15.0)])
        .scan("2015-08-20", vec![p1(40.0), lesion("A1", Adrenal, 26.0)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "SD"), tp("2015-08-20", 2, "PD")]
    );
    let l = tl.labels(VIEW);
    assert_eq!(pd1(&l).map(|p| p.1), Some(Pattern::DF));
    assert_eq!(pd2(&l), pd("2015-08-20", Pattern::OF, vec![Adrenal], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-08-20", 122, true, R::Progression));
}

// dm:52-54 "Normal nodes: a nodal lesion present at a segment's baseline (for segment 2: at PD1) with
// short axis < 10 mm ... cannot progress"; dm:80 unequivocal "normal nodes aside".
// S0 = 60 (P1 40, N1 20). PD1: P1 70, N1 8 → S 78 ≥ 72. Segment 2: N1 normal; target P1 (S0₂ 70).
// N1 14 later / N1 unequivocal → ignored → SD, SD; no PD2; PFS2 censored at 08-20.
#[test]
fn audit_node_normal_at_pd1_cannot_progress_in_segment_two() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("N1", RegionalLn, 20.0)])
        .scan("2015-04-20", vec![p1(70.0), lesion("N1", RegionalLn, 8.0)])
        .scan("2015-06-20", vec![p1(70.0), lesion("N1", RegionalLn, 14.0)])
        .scan("2015-08-20", vec![p1(70.0), unequivocal("N1", RegionalLn)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "PD"), tp("2015-06-20", 2, "SD"), tp("2015-08-20", 2, "SD")]
    );
    let l = tl.labels(VIEW);
    assert!(l.pd2.is_none());
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-08-20", 122, false, R::CensoredLastAssessment));
}

// dm:130 "Event at the earlier of PD1 and death (same day: `progression`)"; dm:133 PFS2 event at death;
// dm:135 OS; dm:148-149 CBPD false when died on or before PD1 + 21. dm:167 "scan after death" — a scan
// on the death day is not after it.
#[test]
fn audit_death_on_the_day_of_the_pd_scan() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]).death("2015-04-20");
    let p = tl.project(VIEW);
    let l = &p.labels;
    assert_eq!(ck(&l.pfs1), clock(T0, "2015-04-20", 49, true, R::Progression));
    assert_eq!(ck(&l.pfs2), clock("2015-04-20", "2015-04-20", 0, true, R::Death));
    assert_eq!(ck(&l.os), clock("2014-12-01", "2015-04-20", 140, true, R::Death));
    assert_eq!(l.cbpd, Some(false));
    assert!(!p.findings.iter().any(|f| f.kind == FindingKind::ScanAfterDeath), "{:?}", p.findings);
    assert!(followup_overdue(&p, d(VIEW), &Config::default()).is_none());
}

// dm:131-132 "censored at the last time point whose response is not NE (`censored_last_assessment`),
// or at T0 (`censored_no_assessment`; `no_baseline` without a baseline)"; "death counts even without
// a baseline". Baseline window starts T0 − 42 = 01-19; a scan on 01-18 is outside.
#[test]
fn audit_pfs1_censoring_rules() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![p1(30.0), lesion("L1", Liver, 20.0)])
        .scan("2015-06-20", vec![p1(30.0)])
        .labels(VIEW);
    assert_eq!(ck(&l.pfs1), clock(T0, "2015-04-20", 49, false, R::CensoredLastAssessment));
    let nb = || base().scan("2015-01-18", vec![p1(40.0)]).scan("2015-04-20", vec![p1(80.0)]);
    let l = nb().labels(VIEW);
    assert!(l.baseline.is_none() && l.pd1.is_none() && l.best_response.is_none());
    assert_eq!(ck(&l.pfs1), clock(T0, T0, 0, false, R::NoBaseline));
    let l = nb().death("2016-01-01").labels(VIEW);
    assert_eq!(ck(&l.pfs1), clock(T0, "2016-01-01", 305, true, R::Death));
}

// dm:135-137 OS "censored at the latest occurred_on of the patient's clinical events in view (not
// retractions, not hidden events, not a `lost_to_follow_up` record)". Events after as_of are out.
// Latest counting event: follow-up alive 2016-01-05 → 400 days. (Retracted follow-up 2016-03-01,
// LTFU 2016-06-01, retraction dated 2016-09-01, scan 2019-01-01 after the view: all ignored.)
#[test]
fn audit_os_censoring_ignores_ltfu_retractions_hidden_and_later_events() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0)])
        .followup("2016-01-05", FollowupStatus::Alive)
        .followup("2016-03-01", FollowupStatus::Alive);
    let bogus = tl.last_id();
    let tl = tl
        .followup("2016-06-01", FollowupStatus::LostToFollowUp)
        .retract("2016-09-01", bogus)
        .scan("2019-01-01", vec![p1(40.0)]);
    let p = tl.project(VIEW);
    assert_eq!(ck(&p.labels.os), clock("2014-12-01", "2016-01-05", 400, false, R::CensoredLastKnownAlive));
    assert!(followup_overdue(&p, d(VIEW), &Config::default()).is_none());
}

// dm:21,28 "a correction (`supersedes`) hides the event it names ... A correcting event is otherwise
// an ordinary event, filtered by its own occurred_on". Follow-up 2016-06-01 corrected to 2016-02-01:
// OS censored at 2016-02-01 (427 days).
#[test]
fn audit_os_uses_the_corrected_date() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).followup("2016-06-01", FollowupStatus::Alive);
    let orig = tl.last_id();
    let tl = tl.followup("2016-02-01", FollowupStatus::Alive).superseding(orig);
    assert_eq!(ck(&tl.labels(VIEW).os), clock("2014-12-01", "2016-02-01", 427, false, R::CensoredLastKnownAlive));
}

// dm:26-28 corrections act in every as_of view; the correcting scan itself is filtered by its date.
// PD scan 04-20 corrected by a scan dated 05-20: as of 05-01 neither counts → no time point → BOR
// null, PFS1 censored_no_assessment; as of VIEW PD1 = 05-20.
#[test]
fn audit_correction_with_a_later_date_in_an_earlier_view() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let orig = tl.last_id();
    let tl = tl.scan("2015-05-20", vec![p1(60.0)]).superseding(orig);
    let l = tl.labels("2015-05-01");
    assert!(l.pd1.is_none() && l.best_response.is_none());
    assert_eq!(ck(&l.pfs1), clock(T0, T0, 0, false, R::CensoredNoAssessment));
    assert_eq!(tl.labels(VIEW).pd1.map(|p| p.date), Some(d("2015-05-20")));
}

// dm:172-174 known_at: events received by then. The retraction of the PD scan is the 6th event
// (received 2030-01-01T00:00:05Z); known at 00:00:04 it is unknown → PD1 stands.
#[test]
fn audit_known_at_excludes_a_retraction_not_yet_received() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let pd_scan = tl.last_id();
    let tl = tl.scan("2015-06-20", vec![p1(40.0)]).retract("2015-07-01", pd_scan);
    let at = |s: i64| Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("audit timeline") + chrono::Duration::seconds(s));
    let before = tl.project_view(View { as_of: d(VIEW), known_at: at(4) }).expect("audit timeline").labels;
    assert_eq!(before.pd1.map(|p| p.date), Some(d("2015-04-20")));
    let after = tl.project_view(View { as_of: d(VIEW), known_at: at(5) }).expect("audit timeline").labels;
    assert!(after.pd1.is_none());
    assert_eq!(after.best_response, Some(Response::SD));
}

// dm:147-151 CBPD: "the crizotinib course active at PD1 (the latest started, if several) ... A start
// pairs with the earliest stop of the same course_id on or after it; a course is active from start
// to stop, both days included." PD1 04-20, PD1 + 21 = 05-11.
#[test]
fn audit_cbpd_course_pairing() {
    let pd = |tl: Tl| tl.scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    // (a) same course_id stopped 04-01 and restarted 04-10: the restart has no stop → active → true.
    let l = pd(base().stop("2015-04-01", Agent::Crizotinib, "crizo").crizotinib("2015-04-10")).labels(VIEW);
    assert_eq!(l.cbpd, Some(true), "restart with a reused course_id");
    // (b) a second course started 04-01 (latest started) stopped 05-01 ≤ 05-11 → false.
    let l = pd(base().start("2015-04-01", Agent::Crizotinib, "crizo2").stop("2015-05-01", Agent::Crizotinib, "crizo2"))
        .labels(VIEW);
    assert_eq!(l.cbpd, Some(false), "latest started course stopped");
    // (c) stopped 04-10, new course started on the PD1 day → active at PD1 → true.
    let l = pd(base().stop("2015-04-10", Agent::Crizotinib, "crizo").start("2015-04-20", Agent::Crizotinib, "c2"))
        .labels(VIEW);
    assert_eq!(l.cbpd, Some(true), "restarted on the PD1 day");
    // (d) stop on PD1 + 21 → false; PD1 + 22 → true; open course: null as of 05-10, true as of 05-11.
    let l = pd(base()).stop("2015-05-11", Agent::Crizotinib, "crizo").labels(VIEW);
    assert_eq!(l.cbpd, Some(false));
    let l = pd(base()).stop("2015-05-12", Agent::Crizotinib, "crizo").labels(VIEW);
    assert_eq!(l.cbpd, Some(true));
    assert_eq!(pd(base()).labels("2015-05-10").cbpd, None);
    assert_eq!(pd(base()).labels("2015-05-11").cbpd, Some(true));
    assert_eq!(pd(base()).death("2015-05-11").labels(VIEW).cbpd, Some(false));
}

// dm:152-153 next_therapy: first non-crizotinib start on or after PD1.
#[test]
fn audit_next_therapy_on_the_pd1_day() {
    let l = base()
        .start("2015-03-20", Agent::Chemotherapy, "chemo")
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .start("2015-04-20", Agent::Alectinib, "alec")
        .labels(VIEW);
    let nt = l.next_therapy.expect("next therapy");
    assert_eq!((nt.date, nt.agent), (d("2015-04-20"), Agent::Alectinib));
}

// dm:45-49 "For each lesion its latest listing in the window that is not `not_evaluated` counts (a
// lesion listed only as `not_evaluated` is a baseline lesion that was not evaluated)"; dm:13-15 size
// from an earlier study; dm:61-62 bbm_class; dm:160-161 oligo BBM alert "no brain RT before T0".
// B1 12 on 2015-01-01 (outside window), not_evaluated on 02-20 → BBM, 1 lesion, size 12 → oligo.
// SRS on T0 is not before T0 → alert raised, prior_brain false.
#[test]
fn audit_bbm_from_a_not_evaluated_lesion_and_srs_on_t0() {
    let tl = Tl::new()
        .enrolled_dx("2015-01-10", "2014-12-01")
        .scan("2015-01-01", vec![lesion("B1", Brain, 12.0)])
        .crizotinib(T0)
        .rt(T0, RtModality::Srs, RtRegion::Brain)
        .scan("2015-02-20", vec![p1(40.0), not_evaluated("B1", Brain)]);
    let p = tl.project(VIEW);
    let b = p.labels.baseline.clone().expect("baseline");
    assert_eq!((b.bbm, b.brain_lesions, b.bbm_class), (true, 1, Some(BrainClass::Oligo)));
    assert_eq!(p.labels.rt.prior_brain, Some(false));
    let kinds: Vec<_> = alerts_between(None, &p, None).iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&AlertKind::OligoBbmWithoutUpfrontBrainRt), "{kinds:?}");
}

// dm:50-63: reference set (present / unequivocal / not_evaluated; absent out), normal nodes (< 10 mm)
// excluded, targets (measurable non-nodal ≥ 10, nodal ≥ 15, ≤ 2 per organ), metastatic organs and
// lesions; dm:14-15 a brain lesion with no known size fails the oligo test → multiple.
// Non-primary reference lesions, normal nodes aside: L2 lung, N2 distant_ln (10 mm: not normal),
// B1 brain (NE), O1 bone (unequivocal) → 4 organs, 4 lesions. H1 absent → out. N1 8 → normal.
// Targets: P1 40 + L2 12 = 52 (N2 10 is not measurable as a node).
#[test]
fn audit_baseline_reference_set_and_metastatic_counts() {
    let b = base()
        .scan("2015-02-10", vec![lesion("H1", Liver, 15.0)])
        .scan(
            "2015-02-20",
            vec![
                p1(40.0),
                lesion("L2", Lung, 12.0),
                lesion("N1", RegionalLn, 8.0),
                lesion("N2", DistantLn, 10.0),
                not_evaluated("B1", Brain),
                unequivocal("O1", Bone),
                absent("H1", Liver),
            ],
        )
        .labels(VIEW)
        .baseline
        .expect("baseline");
    assert_eq!((b.metastatic_organs, b.metastatic_lesions), (4, 4));
    assert_eq!((b.bbm, b.brain_lesions, b.bbm_class), (true, 1, Some(BrainClass::Multiple)));
    assert_eq!(b.target_sum_mm, Some(52.0));
}

// dm:47-48 "`scan_date`: the latest occurred_on of an imaging event in the window" (even one listing
// only not_evaluated lesions); the counted P1 listing is the 02-10 one (S0 40).
#[test]
fn audit_scan_date_is_the_latest_study_in_the_window() {
    let b = base()
        .scan("2015-02-10", vec![p1(40.0)])
        .scan("2015-02-25", vec![not_evaluated("P1", Lung).primary()])
        .labels(VIEW)
        .baseline
        .expect("baseline");
    assert_eq!((b.scan_date, b.target_sum_mm), (d("2015-02-25"), Some(40.0)));
}

// dm:87-89 reappearance after CR → PD and progressing original; dm:73 absent = 0 in nadirs.
// L1 20 → absent (CR) → 3: S 3 vs nadir 0 (+3 < 5: no target PD) but reappearance after CR → PD, OF,
// [liver], SBRT. BOR CR.
#[test]
fn audit_reappearance_after_cr() {
    let l = base()
        .scan("2015-02-20", vec![lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![absent("L1", Liver)])
        .scan("2015-06-20", vec![lesion("L1", Liver, 3.0)])
        .labels(VIEW);
    assert_eq!(l.best_response, Some(Response::CR));
    assert_eq!(pd1(&l), pd("2015-06-20", Pattern::OF, vec![Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
}

// dm:88 reappearance "counts back into S"; dm:74-75/16 own nadir with absent = 0.
// S0 50; TP1 P1 30, L1 absent → S 30 (PR), nadir 30; TP2 L1 6 → S 36 = 1.2×30, +6 → PD. L1 own nadir
// 0 → grew ≥ 5 → progressing; P1 not → OF, [liver], metastasis_only.
#[test]
fn audit_reappearance_without_cr_counts_in_the_sum() {
    let l = base()
        .scan("2015-02-20", vec![p1(30.0), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![p1(30.0), absent("L1", Liver)])
        .scan("2015-06-20", vec![p1(30.0), lesion("L1", Liver, 6.0)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-06-20", Pattern::OF, vec![Liver], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
}

// dm:92-93 "With no targets and no non-targets: NE unless a new lesion"; dm:53-54 normal node
// cannot progress. Only N1 8 (normal node) at baseline: NE, NE (unequivocal on it ignored), then a new
// distant node 10 mm → PD (DF, distant_ln, SBRT). BOR PD (> NE).
#[test]
fn audit_only_a_normal_node_at_baseline() {
    let tl = base()
        .scan("2015-02-20", vec![lesion("N1", RegionalLn, 8.0)])
        .scan("2015-04-20", vec![lesion("N1", RegionalLn, 8.0)])
        .scan("2015-06-20", vec![unequivocal("N1", RegionalLn)])
        .scan("2015-08-20", vec![lesion("N1", RegionalLn, 8.0), lesion("N5", DistantLn, 10.0)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "NE"), tp("2015-06-20", 1, "NE"), tp("2015-08-20", 1, "PD")]
    );
    let l = tl.labels(VIEW);
    assert_eq!(l.best_response, Some(Response::PD));
    assert_eq!(pd1(&l), pd("2015-08-20", Pattern::DF, vec![DistantLn], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    let b = l.baseline.expect("baseline");
    assert_eq!((b.metastatic_organs, b.metastatic_lesions, b.target_sum_mm), (0, 0, None));
}

// dm:163-164 followup_overdue: "the last time point is older than 56 + 14 days at the view date".
// Last time point 04-20; 04-20 + 70 = 06-29 → not overdue; 06-30 → overdue.
#[test]
fn audit_followup_overdue_boundary() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(40.0)]);
    let cfg = Config::default();
    assert!(followup_overdue(&tl.project("2015-06-29"), d("2015-06-29"), &cfg).is_none());
    assert!(followup_overdue(&tl.project("2015-06-30"), d("2015-06-30"), &cfg).is_some());
}

// dm:111-112 "a new lesion is a metastasis even if flagged primary"; extent depends on the primary
// flag, not the organ: a growing non-primary lung lesion L2 (20 → 35; S 60 → 75 ≥ 72) → sites [lung],
// metastasis_only, SBRT (35 ≤ 50).
#[test]
fn audit_extent_follows_the_primary_flag_not_the_organ() {
    let l = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("L2", Lung, 20.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("L2", Lung, 35.0)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::OF, vec![Lung], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
    let l = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("P9", Lung, 15.0).primary()])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Lung], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
}

// dm:130 PFS1 "Event at the earlier of PD1 and death"; dm:133 PFS2 start PD1, event at death;
// dm:138 "A death dated before a clock's start gives negative days, kept as recorded, with a
// data-quality finding"; dm:167 scan after death finding. Death 04-10, PD scan 04-20 (40 → 60).
// PFS1: T0 → 04-10, 39 days, death. PFS2: 04-20 → 04-10, −10 days, event, death.
#[test]
fn audit_death_before_the_pd_scan() {
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).death("2015-04-10").scan("2015-04-20", vec![p1(60.0)]);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.pd1.as_ref().map(|x| x.date), Some(d("2015-04-20")));
    assert_eq!(ck(&p.labels.pfs1), clock(T0, "2015-04-10", 39, true, R::Death));
    assert_eq!(ck(&p.labels.pfs2), clock("2015-04-20", "2015-04-10", -10, true, R::Death));
    let kinds: Vec<_> = p.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::ScanAfterDeath), "{kinds:?}");
    assert!(kinds.contains(&FindingKind::DeathBeforeClockStart), "{kinds:?}");
}

// dm:45 baseline window [T0 − 42, T0] includes T0; dm:67 time points are studies with occurred_on > T0.
// A scan on T0 is the counted baseline listing (S0 60), not a time point → BOR null, PFS1
// censored_no_assessment at T0.
#[test]
fn audit_scan_on_t0_is_baseline_not_a_time_point() {
    let l = base().scan("2015-02-20", vec![p1(40.0)]).scan(T0, vec![p1(60.0)]).labels(VIEW);
    let b = l.baseline.clone().expect("baseline");
    assert_eq!((b.scan_date, b.target_sum_mm), (d(T0), Some(60.0)));
    assert!(l.best_response.is_none() && l.objective_response.is_none() && l.pd1.is_none());
    assert_eq!(ck(&l.pfs1), clock(T0, T0, 0, false, R::CensoredNoAssessment));
}

// dm:68-69 within a time point "each lesion's latest listing in the group that is not
// `not_evaluated` counts"; dm:71-72 a target without a diameter is not evaluated (no size fallback
// in sums, dm:16-17). 04-20 P1 60 + 04-22 P1 not_evaluated → P1 60 → PD.
// Separately P1 listed present without a diameter → NE, not SD.
#[test]
fn audit_not_evaluated_listing_does_not_mask_an_earlier_one_in_the_group() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0)])
        .scan("2015-04-20", vec![p1(60.0)])
        .scan("2015-04-22", vec![not_evaluated("P1", Lung).primary()]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "PD")]);
    let tl = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![no_size("P1", Lung).primary()]);
    assert_eq!(resp(&tl, VIEW), vec![tp("2015-04-20", 1, "NE")]);
}

// dm:52-54 normal node "(for segment 2: at PD1)"; dm:124-125 "A lesion's state for segment 2 (present,
// absent, normal node) is taken from its latest listing at or before PD1".
// S0 60 (P1 40, N1 20). 04-20: P1 40, N1 8 → S 48 (SD). 06-20: P1 70, N1 unlisted → S 70 ≥ 57.6,
// +22 → PD1 (PD even with a target not evaluated). Latest N1 listing at/before PD1 = 8 mm → normal
// node in segment 2 → its later `unequivocal_progression` is ignored → SD, no PD2.
#[test]
fn audit_segment_two_normal_node_from_the_latest_listing_before_pd1() {
    let tl = base()
        .scan("2015-02-20", vec![p1(40.0), lesion("N1", RegionalLn, 20.0)])
        .scan("2015-04-20", vec![p1(40.0), lesion("N1", RegionalLn, 8.0)])
        .scan("2015-06-20", vec![p1(70.0)])
        .scan("2015-08-20", vec![p1(70.0), unequivocal("N1", RegionalLn)]);
    assert_eq!(
        resp(&tl, VIEW),
        vec![tp("2015-04-20", 1, "SD"), tp("2015-06-20", 1, "PD"), tp("2015-08-20", 2, "SD")]
    );
    assert!(tl.labels(VIEW).pd2.is_none());
}

// dm:159 "`brain_oligo_progression`: brain at PD1 (or PD2) is oligo"; dm:162 `second_progression`.
// PD1 04-20 (P1 40 → 60, OF, brain none). PD2 06-20: new B1 brain 8 → DF, [brain], oligo, SRS.
#[test]
fn audit_brain_oligo_alert_at_pd2() {
    let before = base().scan("2015-02-20", vec![p1(40.0)]).scan("2015-04-20", vec![p1(60.0)]);
    let after = before.clone().scan("2015-06-20", vec![p1(60.0), lesion("B1", Brain, 8.0)]);
    let l = after.labels(VIEW);
    assert_eq!(pd2(&l), pd("2015-06-20", Pattern::DF, vec![Brain], Extent::MetastasisOnly, Br::Oligo, Sc::Srs));
    let a = alerts_between(Some(&before.project(VIEW)), &after.project(VIEW), Some(after.last_id()));
    let kinds: Vec<_> = a.iter().map(|x| x.kind).collect();
    assert!(kinds.contains(&AlertKind::SecondProgression), "{kinds:?}");
    assert!(kinds.contains(&AlertKind::BrainOligoProgression), "{kinds:?}");
}

// dm:74-75 "A lesion's own nadir: its smallest measured diameter at the segment baseline and earlier
// time points"; dm:16-17 measurements vs the size-test fallback (dm:13-15 applies to "size tests
// (oligo, SBRT, new node)" only). O1 bone measured 8 only on 2015-01-01 (outside the window); at
// baseline it is listed without a diameter → no own nadir. At 04-20 O1 14 and new A1 15 → PD by the
// new lesion; O1 has no own nadir, so it is not a progressing original lesion → DF, [adrenal], SBRT.
#[test]
fn audit_own_nadir_uses_only_measurements_in_the_segment() {
    let l = Tl::new()
        .enrolled_dx("2015-01-10", "2014-12-01")
        .scan("2015-01-01", vec![lesion("O1", Bone, 8.0)])
        .crizotinib(T0)
        .scan("2015-02-20", vec![p1(40.0), no_size("O1", Bone)])
        .scan("2015-04-20", vec![p1(40.0), lesion("O1", Bone, 14.0), lesion("A1", Adrenal, 15.0)])
        .labels(VIEW);
    assert_eq!(pd1(&l), pd("2015-04-20", Pattern::DF, vec![Adrenal], Extent::MetastasisOnly, Br::None, Sc::Sbrt));
}
