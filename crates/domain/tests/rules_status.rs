//! domain.md "Which events count", "Status and index date", "Views", and the Labels JSON shape.
//! Given a timeline, when projected at a view, then these labels.
#![allow(clippy::type_complexity)]

mod rules_support;

use chrono::{TimeZone, Utc};
use registry_domain::events::{Agent, FollowupStatus, Organ, RtModality, RtRegion};
use registry_domain::findings::FindingKind;
use registry_domain::labels::{ClockReason, Labels, Status};
use registry_domain::view::View;
use rules_support::*;

fn std_scans(t: Tl) -> Tl {
    t.scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary(), lesion("L1", Liver, 20.0)])
        .scan("2015-04-20", vec![lesion("P1", Lung, 30.0).primary(), lesion("L1", Liver, 15.0)])
}

#[test]
fn status_table() {
    // (name, timeline, expected status, index_date, diagnosis_date)
    let cases: Vec<(&str, Tl, Status, Option<&str>, Option<&str>)> = vec![
        ("enrolled and on crizotinib: indexed", std_scans(base()), Status::Indexed, Some(T0), Some("2014-12-01")),
        (
            "no enrolment: incomplete, still indexed by treatment",
            std_scans(Tl::new().crizotinib(T0)),
            Status::Incomplete,
            Some(T0),
            None,
        ),
        (
            "enrolled, only alectinib: not indexed",
            Tl::new().enrolled("2015-01-10").start("2015-03-02", Agent::Alectinib, "a"),
            Status::NotIndexed,
            None,
            Some("2015-01-10"),
        ),
        (
            "T0 is the earliest crizotinib start",
            base().start("2015-01-20", Agent::Crizotinib, "early").start("2015-02-01", Agent::Chemotherapy, "c"),
            Status::Indexed,
            Some("2015-01-20"),
            Some("2014-12-01"),
        ),
    ];
    for (name, tl, status, index, dx) in cases {
        let l = tl.labels(VIEW);
        assert_eq!(l.status, status, "{name}");
        assert_eq!(l.index_date, index.map(d), "{name}");
        assert_eq!(l.diagnosis_date, dx.map(d), "{name}");
    }
}

#[test]
fn incomplete_keeps_treatment_imaging_labels_but_no_os() {
    let l = std_scans(Tl::new().crizotinib(T0)).labels(VIEW);
    assert_eq!(l.status, Status::Incomplete);
    assert!(l.baseline.is_some());
    assert_eq!(l.best_response.map(|r| r.as_str()), Some("SD"));
    assert!(l.pfs1.is_some());
    assert_eq!(l.os, None);
    assert_eq!(l.diagnosis_date, None);
}

#[test]
fn not_indexed_nulls_every_t0_label() {
    let l = Tl::new()
        .enrolled("2015-01-10")
        .rt("2015-01-15", RtModality::Srs, RtRegion::Brain)
        .scan("2015-02-20", vec![lesion("P1", Lung, 40.0).primary()])
        .labels(VIEW);
    assert_eq!(l.status, Status::NotIndexed);
    assert_eq!(l.baseline, None);
    assert_eq!(l.best_response, None);
    assert_eq!(l.objective_response, None);
    assert_eq!(l.pd1, None);
    assert_eq!(l.pfs1, None);
    assert_eq!(l.pfs2, None);
    assert_eq!(l.cbpd, None);
    assert_eq!(l.next_therapy, None);
    assert_eq!(l.rt.prior, None);
    assert_eq!(l.rt.prior_brain, None);
    assert!(l.rt.prior_brain_modalities.is_empty());
    assert_eq!(l.rt.prior_extracranial, None);
    assert!(l.rt.any, "any_rt is always a boolean");
    assert_eq!(l.os.map(|c| c.reason), Some(ClockReason::CensoredLastKnownAlive));
}

#[test]
fn retraction_hides_its_target_whatever_the_arrival_order() {
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.retract("2016-02-01", death);
    assert_eq!(tl.labels(VIEW).death_date, None);
    // The retraction arrives first.
    let mut rev = tl.clone();
    rev.events.reverse();
    assert_eq!(rev.labels(VIEW).death_date, None);
}

#[test]
fn retracting_a_retraction_brings_the_target_back() {
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.retract("2016-02-01", death);
    let r1 = tl.last_id();
    let tl = tl.retract("2016-02-02", r1);
    assert_eq!(tl.labels(VIEW).death_date, Some(d("2016-01-01")));
}

#[test]
fn corrections_hide_what_they_supersede_and_retracting_one_restores_the_previous_version() {
    let tl = base().death("2016-01-01");
    let original = tl.last_id();
    let tl = tl.death("2016-01-05").superseding(original);
    let c1 = tl.last_id();
    let l = tl.labels(VIEW);
    assert_eq!(l.death_date, Some(d("2016-01-05")), "the correction replaces the original");
    assert!(
        tl.project(VIEW).findings.iter().all(|f| f.kind != FindingKind::SeveralDeaths),
        "a correction is not a second death"
    );

    // A correction of the correction hides both earlier versions.
    let tl2 = tl.clone().death("2016-01-09").superseding(c1);
    let c2 = tl2.last_id();
    assert_eq!(tl2.labels(VIEW).death_date, Some(d("2016-01-09")));

    // Retracting c2 brings c1 back (which still hides the original).
    let tl3 = tl2.clone().retract("2016-03-01", c2);
    assert_eq!(tl3.labels(VIEW).death_date, Some(d("2016-01-05")));

    // Retracting c1 as well brings the original back.
    let tl4 = tl3.retract("2016-03-02", c1);
    assert_eq!(tl4.labels(VIEW).death_date, Some(d("2016-01-01")));
}

#[test]
fn link_to_another_patients_event_is_ignored_with_a_finding() {
    let other = Tl::for_patient("P002").enrolled("2015-01-01").death("2015-06-01");
    let other_death = other.last_id();
    let mine = base().death("2016-01-01").retract("2016-02-01", other_death);
    let bad = mine.last_id();
    let mut all = mine.recorded();
    all.extend(other.recorded());
    let p = registry_domain::projection::project_patient(
        &registry_domain::events::PatientId::parse("P001").expect("pid"),
        &all,
        &View::as_of(d(VIEW)),
        &registry_domain::config::Config::default(),
    )
    .expect("listed");
    assert_eq!(p.labels.death_date, Some(d("2016-01-01")));
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::CrossPatientLink && f.event_id == bad));
    // The other patient's death is untouched.
    let q = registry_domain::projection::project_patient(
        &registry_domain::events::PatientId::parse("P002").expect("pid"),
        &all,
        &View::as_of(d(VIEW)),
        &registry_domain::config::Config::default(),
    )
    .expect("listed");
    assert_eq!(q.labels.death_date, Some(d("2015-06-01")));
}

#[test]
fn correction_of_another_type_is_ignored_with_a_finding() {
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.followup("2016-02-01", FollowupStatus::Alive).superseding(death);
    let p = tl.project(VIEW);
    assert_eq!(p.labels.death_date, Some(d("2016-01-01")));
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::InvalidLink));
}

#[test]
fn retractions_and_corrections_act_in_every_as_of_view() {
    // Death 2016-01-01 retracted on 2017-01-01: a view as of 2016-06-01 ignores it too.
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.retract("2017-01-01", death);
    assert_eq!(tl.labels("2016-06-01").death_date, None);
    // A correction dated after as_of hides its target, but is itself filtered by its own date.
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.death("2016-08-01").superseding(death);
    assert_eq!(tl.labels("2016-06-01").death_date, None);
    assert_eq!(tl.labels("2016-09-01").death_date, Some(d("2016-08-01")));
}

#[test]
fn known_at_decides_what_is_known() {
    let tl = base().death("2016-01-01");
    // recorded(): event i arrives at 2030-01-01T00:00:i.
    let before_death = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 1).single().expect("t");
    let v = View { as_of: d(VIEW), known_at: Some(before_death) };
    assert_eq!(tl.project_view(v).expect("listed").labels.death_date, None);
    let v = View { as_of: d(VIEW), known_at: Some(before_death + chrono::Duration::seconds(1)) };
    assert_eq!(tl.project_view(v).expect("listed").labels.death_date, Some(d("2016-01-01")));
}

#[test]
fn second_enrolment_first_counts_with_finding() {
    let tl = Tl::new().enrolled_dx("2015-01-10", "2014-12-01").enrolled_dx("2015-02-10", "2015-01-01");
    let second = tl.last_id();
    let p = tl.crizotinib(T0).project(VIEW);
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-12-01")));
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::SecondEnrolment && f.event_id == second));
}

#[test]
fn several_deaths_earliest_counts_with_finding() {
    let tl = base().death("2016-03-01");
    let late = tl.last_id();
    let p = tl.death("2016-02-01").project(VIEW);
    assert_eq!(p.labels.death_date, Some(d("2016-02-01")));
    assert!(p.findings.iter().any(|f| f.kind == FindingKind::SeveralDeaths && f.event_id == late));
}

#[test]
fn patients_listed_need_a_counted_non_retraction_event_in_view() {
    // Only a retraction (of an unknown event): not listed.
    let only_retraction = Tl::new().retract("2016-01-01", uuid::Uuid::from_u128(7));
    assert!(only_retraction.project_view(View::as_of(d(VIEW))).is_none());
    // Everything retracted: not listed.
    let tl = Tl::new().enrolled("2015-01-10");
    let e = tl.last_id();
    assert!(tl.retract("2015-02-01", e).project_view(View::as_of(d(VIEW))).is_none());
    // Every event after as_of: not listed.
    assert!(base().project_view(View::as_of(d("2014-01-01"))).is_none());
    // Listed otherwise.
    assert!(base().project_view(View::as_of(d(VIEW))).is_some());
}

#[test]
fn duplicate_event_id_the_one_stored_first_stands() {
    let tl = base().death("2016-01-01");
    let mut rec = tl.recorded();
    let mut conflicting = rec.last().expect("death").clone();
    conflicting.event.occurred_on = d("2016-05-05");
    conflicting.seq = 0; // stored first
    rec.push(conflicting);
    let p = registry_domain::projection::project_patient(
        &registry_domain::events::PatientId::parse("P001").expect("pid"),
        &rec,
        &View::as_of(d(VIEW)),
        &registry_domain::config::Config::default(),
    )
    .expect("listed");
    assert_eq!(p.labels.death_date, Some(d("2016-05-05")));
}

#[test]
fn labels_json_has_the_interfaces_shape() {
    let tl = base()
        .scan(
            "2015-02-20",
            vec![lesion("P1", Lung, 40.0).primary(), lesion("B1", Brain, 12.0), lesion("O1", Organ::Bone, 31.0)],
        )
        .scan(
            "2015-04-20",
            vec![lesion("P1", Lung, 20.0).primary(), lesion("B1", Brain, 8.0), lesion("O1", Organ::Bone, 10.0)],
        )
        .followup("2015-06-01", FollowupStatus::Alive);
    let l = tl.labels("2015-07-01");
    // Targets P1 40 + O1 31 + B1 12 = 83 (all measurable). Time point 2015-04-20: S = 38 ≤ 0.7 × 83
    // = 58.1: PR, 49 days after T0.
    let expected = concat!(
        r#"{"patient_id":"P001","status":"indexed","index_date":"2015-03-02","diagnosis_date":"2014-12-01","#,
        r#""baseline":{"scan_date":"2015-02-20","bbm":true,"bbm_class":"oligo","brain_lesions":1,"#,
        r#""metastatic_organs":2,"metastatic_lesions":2,"target_sum_mm":83},"#,
        r#""best_response":"PR","objective_response":true,"pd1":null,"pd2":null,"#,
        r#""pfs1":{"start":"2015-03-02","end":"2015-04-20","days":49,"event":false,"reason":"censored_last_assessment"},"#,
        r#""pfs2":null,"#,
        r#""os":{"start":"2014-12-01","end":"2015-06-01","days":182,"event":false,"reason":"censored_last_known_alive"},"#,
        r#""rt":{"prior":false,"prior_brain":false,"prior_brain_modalities":[],"prior_extracranial":false,"#,
        r#""salvage":null,"salvage_modalities":[],"any":false},"#,
        r#""cbpd":null,"next_therapy":null,"death_date":null}"#
    );
    assert_eq!(l.to_json_line(), expected);
    let back: Labels = serde_json::from_str(expected).expect("labels read back");
    assert_eq!(back, l);
}

#[test]
fn a_retraction_waits_for_its_target() {
    // The retraction is known before the death it names: no effect until the death arrives, then
    // the death is hidden.
    let tl = base().death("2016-01-01");
    let death = tl.last_id();
    let tl = tl.retract("2016-02-01", death);
    let mut rec = tl.recorded();
    let death_rec = rec.iter().position(|r| r.event.event_id == death).expect("death");
    let death_rec = rec.remove(death_rec);
    let pid = registry_domain::events::PatientId::parse("P001").expect("pid");
    let cfg = registry_domain::config::Config::default();
    let view = View::as_of(d(VIEW));
    let without = registry_domain::projection::project_patient(&pid, &rec, &view, &cfg).expect("listed");
    assert_eq!(without.labels.death_date, None);
    assert!(without.findings.is_empty(), "a pending link is not a finding: {:?}", without.findings);
    rec.push(death_rec);
    let with = registry_domain::projection::project_patient(&pid, &rec, &view, &cfg).expect("listed");
    assert_eq!(with.labels.death_date, None);
}

#[test]
fn links_forming_a_cycle_are_ignored_with_a_finding() {
    // Two retractions naming each other: neither acts; the death they do not name stays.
    let mut tl = base().death("2016-01-01");
    let a = uuid::Uuid::from_u128(0xA);
    let b = uuid::Uuid::from_u128(0xB);
    tl = tl.retract("2016-02-01", b);
    if let Some(e) = tl.events.last_mut() {
        e.event_id = a;
    }
    tl = tl.retract("2016-02-02", a);
    if let Some(e) = tl.events.last_mut() {
        e.event_id = b;
    }
    let p = tl.project(VIEW);
    assert_eq!(p.labels.death_date, Some(d("2016-01-01")));
    let cyc: Vec<_> = p.findings.iter().filter(|f| f.kind == FindingKind::InvalidLink).map(|f| f.event_id).collect();
    assert_eq!(cyc, vec![a, b]);
}

#[test]
fn recorded_at_compares_as_an_instant() {
    // Two enrolments on the same day: 10:00+08:00 (02:00Z) was recorded before 05:00Z, so it is
    // the first in canonical order and counts.
    use chrono::{FixedOffset, TimeZone as _};
    let mut tl = Tl::new().enrolled_dx("2015-01-10", "2014-11-01").enrolled_dx("2015-01-10", "2014-12-01");
    tl.events[0].recorded_at =
        FixedOffset::east_opt(0).and_then(|z| z.with_ymd_and_hms(2015, 1, 10, 5, 0, 0).single()).expect("time");
    tl.events[1].recorded_at =
        FixedOffset::east_opt(8 * 3600).and_then(|z| z.with_ymd_and_hms(2015, 1, 10, 10, 0, 0).single()).expect("time");
    let p = tl.crizotinib(T0).project(VIEW);
    assert_eq!(p.labels.diagnosis_date, Some(d("2014-12-01")));
}

#[test]
fn config_thresholds_are_honoured() {
    use registry_domain::config::Config;
    use registry_domain::projection::project_patient;
    let tl = base().scan("2015-02-01", vec![lesion("P1", Lung, 40.0).primary(), lesion("L1", Liver, 20.0)]).scan(
        "2015-04-20",
        vec![lesion("P1", Lung, 40.0).primary(), lesion("L1", Liver, 20.0), lesion("A1", Adrenal, 15.0)],
    );
    let pid = registry_domain::events::PatientId::parse("P001").expect("pid");
    let view = View::as_of(d("2015-05-15"));
    let default = project_patient(&pid, &tl.recorded(), &view, &Config::default()).expect("listed").labels;
    // Default: baseline 2015-02-01 is in the 42-day window; PD1 2015-04-20; CBPD true by 05-11.
    assert_eq!(default.pd1.as_ref().map(|p| p.date), Some(d("2015-04-20")));
    assert_eq!(default.cbpd, Some(true));
    let cfg = Config { cbpd_days: 30, ..Config::default() };
    assert_eq!(project_patient(&pid, &tl.recorded(), &view, &cfg).expect("listed").labels.cbpd, None);
    let cfg = Config { sbrt_max_diameter_mm: 10.0, ..Config::default() };
    let l = project_patient(&pid, &tl.recorded(), &view, &cfg).expect("listed").labels;
    assert_eq!(l.pd1.map(|p| format!("{:?}", p.salvage_candidate)), Some("None".into()));
    let cfg = Config { baseline_window_days: 20, ..Config::default() };
    let l = project_patient(&pid, &tl.recorded(), &view, &cfg).expect("listed").labels;
    assert_eq!((l.baseline, l.pd1), (None, None));
}

#[test]
fn the_interfaces_example_reads_and_writes_back_byte_for_byte() {
    // interfaces.md "Labels", compacted.
    let example = concat!(
        r#"{"patient_id":"P001","status":"indexed","index_date":"2015-03-02","diagnosis_date":"2014-12-01","#,
        r#""baseline":{"scan_date":"2015-02-20","bbm":true,"bbm_class":"oligo","brain_lesions":2,"#,
        r#""metastatic_organs":2,"metastatic_lesions":4,"target_sum_mm":83},"#,
        r#""best_response":"PR","objective_response":true,"#,
        r#""pd1":{"date":"2015-11-10","pattern":"ODF","extent":"metastasis_only","sites":["bone","brain"],"#,
        r#""brain":"oligo","salvage_candidate":"srs"},"#,
        r#""pd2":null,"#,
        r#""pfs1":{"start":"2015-03-02","end":"2015-11-10","days":253,"event":true,"reason":"progression"},"#,
        r#""pfs2":{"start":"2015-11-10","end":"2016-04-02","days":144,"event":false,"reason":"censored_last_assessment"},"#,
        r#""os":{"start":"2014-12-01","end":"2016-05-01","days":517,"event":false,"reason":"censored_last_known_alive"},"#,
        r#""rt":{"prior":false,"prior_brain":false,"prior_brain_modalities":[],"prior_extracranial":false,"#,
        r#""salvage":true,"salvage_modalities":["srs"],"any":true},"#,
        r#""cbpd":true,"next_therapy":null,"death_date":null}"#
    );
    let l: Labels = serde_json::from_str(example).expect("the example is a valid Labels");
    assert_eq!(l.to_json_line(), example);

    // And a timeline that leads to exactly these labels, worked out by hand:
    // baseline targets P1 40, O1 31, B1 12 (S0 83; B2 8 mm and O2 unsized are non-targets);
    // 2015-05-04 S = 40 ≤ 58.1: PR; 2015-11-10 O1 15 → 25 (+67 %, +10) and new B3 6 mm: ODF,
    // bone + brain, brain oligo (1 lesion) → SRS; segment 2 targets P1 20, O1 25 (S0 45);
    // 2016-04-02 S = 45: SD, PFS2 censored; SRS on 2015-11-20: salvage; alive on 2016-05-01.
    let timeline = base()
        .scan(
            "2015-02-20",
            vec![
                lesion("P1", Lung, 40.0).primary(),
                lesion("B1", Brain, 12.0),
                lesion("B2", Brain, 8.0),
                lesion("O1", Organ::Bone, 31.0),
                no_size("O2", Organ::Bone),
            ],
        )
        .scan(
            "2015-05-04",
            vec![
                lesion("P1", Lung, 20.0).primary(),
                lesion("B1", Brain, 5.0),
                lesion("B2", Brain, 5.0),
                lesion("O1", Organ::Bone, 15.0),
                no_size("O2", Organ::Bone),
            ],
        )
        .scan(
            "2015-11-10",
            vec![
                lesion("P1", Lung, 20.0).primary(),
                lesion("B1", Brain, 5.0),
                lesion("B2", Brain, 5.0),
                lesion("O1", Organ::Bone, 25.0),
                no_size("O2", Organ::Bone),
                lesion("B3", Brain, 6.0),
            ],
        )
        .rt("2015-11-20", RtModality::Srs, RtRegion::Brain)
        .scan(
            "2016-04-02",
            vec![
                lesion("P1", Lung, 20.0).primary(),
                lesion("B1", Brain, 5.0),
                lesion("B2", Brain, 5.0),
                lesion("O1", Organ::Bone, 25.0),
                no_size("O2", Organ::Bone),
                lesion("B3", Brain, 3.0),
            ],
        )
        .followup("2016-05-01", FollowupStatus::Alive);
    assert_eq!(timeline.labels("2016-06-01").to_json_line(), example);
}
