//! Properties of the projection on random small cohorts: arrival order, duplicates and replay never
//! change a byte; a view as of D never uses a clinical event dated after D; suspicious facts give
//! findings, never a panic or a changed label.

#[path = "rules_support/mod.rs"]
mod rules_support;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use registry_domain::alerts::{alert_id, alerts_between};
use registry_domain::config::Config;
use registry_domain::events::*;
use registry_domain::findings::FindingKind;
use registry_domain::labels::Response;
use registry_domain::projection::{project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use rules_support::{Tl, L};

const PIDS: [&str; 3] = ["P001", "P002", "P003"];

#[derive(Debug, Clone)]
enum Op {
    Enrol(u16, u16),
    Crizotinib(u16),
    Start(u16, u8, u8),
    Stop(u16, u8),
    Scan(u16, Vec<(u8, u8, u8)>, Option<u8>),
    Rt(u16, u8),
    Death(u16),
    Follow(u16, bool),
    Retract(u16, u8),
    Correct(u8, u16),
    RetractOther(u16, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let day = 0u16..720;
    prop_oneof![
        1 => (day.clone(), 0u16..200).prop_map(|(d, x)| Op::Enrol(d, x)),
        2 => day.clone().prop_map(Op::Crizotinib),
        1 => (day.clone(), 0u8..9, 0u8..3).prop_map(|(d, a, c)| Op::Start(d, a, c)),
        1 => (day.clone(), 0u8..3).prop_map(|(d, c)| Op::Stop(d, c)),
        8 => (day.clone(), prop::collection::vec((0u8..8, 0u8..10, 0u8..70), 0..6), prop::option::of(0u8..5))
            .prop_map(|(d, l, r)| Op::Scan(d, l, r)),
        1 => (day.clone(), 0u8..6).prop_map(|(d, m)| Op::Rt(d, m)),
        1 => day.clone().prop_map(Op::Death),
        1 => (day.clone(), any::<bool>()).prop_map(|(d, l)| Op::Follow(d, l)),
        1 => (day.clone(), any::<u8>()).prop_map(|(d, t)| Op::Retract(d, t)),
        1 => (any::<u8>(), day.clone()).prop_map(|(t, d)| Op::Correct(t, d)),
        1 => (day, 0u8..3, any::<u8>()).prop_map(|(d, p, t)| Op::RetractOther(d, p, t)),
    ]
}

fn date(day: u16) -> String {
    NaiveDate::from_ymd_opt(2015, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(u64::from(day))))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

const POOL: [(&str, Organ, bool); 8] = [
    ("P1", Organ::Lung, true),
    ("L1", Organ::Liver, false),
    ("L2", Organ::Liver, false),
    ("B1", Organ::Brain, false),
    ("B2", Organ::Brain, false),
    ("N1", Organ::RegionalLn, false),
    ("A1", Organ::Adrenal, false),
    ("O1", Organ::Bone, false),
];
const AGENTS: [Agent; 4] = [Agent::Crizotinib, Agent::Alectinib, Agent::Chemotherapy, Agent::Crizotinib];
const RT: [(RtModality, RtRegion); 6] = [
    (RtModality::Srs, RtRegion::Brain),
    (RtModality::Wbrt, RtRegion::Brain),
    (RtModality::Sbrt, RtRegion::Bone),
    (RtModality::Conventional, RtRegion::Thorax),
    (RtModality::Sbrt, RtRegion::Liver),
    (RtModality::Conventional, RtRegion::Brain),
];
const REPORTED: [ReportedResponse; 5] =
    [ReportedResponse::CR, ReportedResponse::PR, ReportedResponse::SD, ReportedResponse::PD, ReportedResponse::NE];

fn lesions(spec: &[(u8, u8, u8)]) -> Vec<L> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, s, mm) in spec {
        let (id, organ, primary) = POOL[usize::from(*i) % POOL.len()];
        if !seen.insert(id) {
            continue;
        }
        let mm = f64::from(*mm) + if mm % 3 == 0 { 0.5 } else { 0.0 };
        let l = match s {
            0..=5 => rules_support::lesion(id, organ, mm),
            6 => rules_support::absent(id, organ),
            7 => rules_support::not_evaluated(id, organ),
            8 => rules_support::unequivocal(id, organ),
            _ => rules_support::no_size(id, organ),
        };
        out.push(if primary { l.primary() } else { l });
    }
    out
}

/// Applies one op to a timeline; `RetractOther` names an event of an earlier-built patient.
fn apply_op(tl: Tl, op: &Op, others: &[Tl]) -> Tl {
    match op {
        Op::Enrol(d, dx) => {
            let dx_day = d.saturating_sub(*dx);
            tl.enrolled_dx(&date(*d), &date(dx_day))
        }
        Op::Crizotinib(d) => tl.crizotinib(&date(*d)),
        Op::Start(d, a, c) => tl.start(&date(*d), AGENTS[usize::from(*a) % AGENTS.len()], &format!("c{c}")),
        Op::Stop(d, c) => tl.stop(&date(*d), Agent::Crizotinib, if *c == 0 { "crizo" } else { "c1" }),
        Op::Scan(d, l, r) => {
            let les = lesions(l);
            match r {
                Some(r) => tl.scan_reported(&date(*d), les, REPORTED[usize::from(*r) % 5]),
                None => tl.scan(&date(*d), les),
            }
        }
        Op::Rt(d, m) => {
            let (m, r) = RT[usize::from(*m) % RT.len()];
            tl.rt(&date(*d), m, r)
        }
        Op::Death(d) => tl.death(&date(*d)),
        Op::Follow(d, lost) => {
            tl.followup(&date(*d), if *lost { FollowupStatus::LostToFollowUp } else { FollowupStatus::Alive })
        }
        Op::Retract(d, t) if !tl.events.is_empty() => {
            let target = tl.events[usize::from(*t) % tl.events.len()].event_id;
            tl.retract(&date(*d), target)
        }
        Op::Correct(t, d) if !tl.events.is_empty() => {
            let old = tl.events[usize::from(*t) % tl.events.len()].clone();
            tl.push(&date(*d), old.payload.clone()).superseding(old.event_id)
        }
        Op::RetractOther(d, other, t) => match others.get(usize::from(*other) % others.len().max(1)) {
            Some(o) if !o.events.is_empty() => {
                let target = o.events[usize::from(*t) % o.events.len()].event_id;
                tl.retract(&date(*d), target)
            }
            _ => tl,
        },
        _ => tl,
    }
}

/// Builds each patient's timeline.
fn build(cohort: &[Vec<Op>]) -> Vec<Tl> {
    let mut tls: Vec<Tl> = Vec::new();
    for (p, ops) in cohort.iter().enumerate() {
        let mut tl = Tl::for_patient(PIDS[p]);
        for op in ops {
            tl = apply_op(tl, op, &tls);
        }
        tls.push(tl);
    }
    tls
}

/// Whether a timeline holds a retraction or a correction.
fn has_links(tl: &Tl) -> bool {
    tl.events.iter().any(|e| e.supersedes.is_some() || matches!(e.payload, Payload::EventRetracted(_)))
}

fn all_recorded(tls: &[Tl]) -> Vec<RecordedEvent> {
    let base = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("time");
    let mut out = Vec::new();
    let mut seq = 0u64;
    // Interleave patients so that arrival is not grouped by patient.
    let longest = tls.iter().map(|t| t.events.len()).max().unwrap_or(0);
    for i in 0..longest {
        for tl in tls {
            if let Some(e) = tl.events.get(i) {
                seq += 1;
                out.push(RecordedEvent {
                    event: e.clone(),
                    seq,
                    received_at: base + chrono::Duration::seconds(seq as i64),
                });
            }
        }
    }
    out
}

fn project_all(events: &[RecordedEvent], view: &View) -> Vec<Option<PatientProjection>> {
    PIDS.iter().map(|p| project_patient(&PatientId::parse(p).expect("pid"), events, view, &Config::default())).collect()
}

fn bytes(ps: &[Option<PatientProjection>]) -> Vec<String> {
    ps.iter()
        .map(|p| match p {
            Some(p) => format!("{}|{}", p.labels.to_json_line(), serde_json::to_string(p).unwrap_or_default()),
            None => "unlisted".into(),
        })
        .collect()
}

fn cohort() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 0..14), 1..=3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_arrival_order_and_duplicates_give_the_same_bytes(c in cohort(), seed in any::<u64>(), as_of in 0u16..800) {
        let tls = build(&c);
        let events = all_recorded(&tls);
        let view = View::as_of(NaiveDate::parse_from_str(&date(as_of), "%Y-%m-%d").expect("date"));
        let reference = bytes(&project_all(&events, &view));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut shuffled = events.clone();
        // Duplicate deliveries of a few events, stored later.
        let dups: Vec<RecordedEvent> = events.iter().step_by(3).map(|r| {
            let mut d = r.clone();
            d.seq += 10_000;
            d
        }).collect();
        shuffled.extend(dups);
        shuffled.shuffle(&mut rng);
        prop_assert_eq!(&reference, &bytes(&project_all(&shuffled, &view)));
        // Replay: the same input twice gives the same bytes.
        prop_assert_eq!(&reference, &bytes(&project_all(&shuffled, &view)));
    }

    #[test]
    fn known_at_is_a_replay_of_the_events_received_by_then(c in cohort(), k in 0usize..60) {
        let tls = build(&c);
        let events = all_recorded(&tls);
        let k = k.min(events.len());
        let as_of = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
        let known_at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("time")
            + chrono::Duration::seconds(k as i64);
        let by_known = project_all(&events, &View { as_of, known_at: Some(known_at) });
        let prefix = project_all(&events[..k], &View::as_of(as_of));
        prop_assert_eq!(bytes(&by_known), bytes(&prefix));
    }

    #[test]
    fn clinical_events_after_the_cut_off_do_not_change_the_view(
        c in cohort(), later in prop::collection::vec(op(), 1..8), cut in 0u16..720
    ) {
        let tls = build(&c);
        let view = View::as_of(NaiveDate::parse_from_str(&date(cut), "%Y-%m-%d").expect("date"));
        let before = bytes(&project_all(&all_recorded(&tls), &view));
        // Append clinical events (no retraction, no correction) dated after the cut-off.
        let mut extended = tls.clone();
        let shift = |d: u16| cut + 1 + d % 300;
        for op in later {
            let op = match op {
                Op::Enrol(d, x) => Op::Enrol(shift(d), x),
                Op::Crizotinib(d) => Op::Crizotinib(shift(d)),
                Op::Start(d, a, x) => Op::Start(shift(d), a, x),
                Op::Stop(d, x) => Op::Stop(shift(d), x),
                Op::Scan(d, l, r) => Op::Scan(shift(d), l, r),
                Op::Rt(d, m) => Op::Rt(shift(d), m),
                Op::Death(d) => Op::Death(shift(d)),
                Op::Follow(d, l) => Op::Follow(shift(d), l),
                _ => continue,
            };
            extended[0] = apply_op(extended[0].clone(), &op, &[]);
        }
        let after = bytes(&project_all(&all_recorded(&extended), &view));
        prop_assert_eq!(before, after);
    }

    #[test]
    fn suspicious_facts_give_findings_never_a_panic_or_a_changed_label(c in cohort(), as_of in 0u16..800) {
        let tls = build(&c);
        let events = all_recorded(&tls);
        let view = View::as_of(NaiveDate::parse_from_str(&date(as_of), "%Y-%m-%d").expect("date"));
        let projections = project_all(&events, &view);
        // Without the readers' reported responses, the labels are the same.
        let stripped: Vec<RecordedEvent> = events.iter().cloned().map(|mut r| {
            if let Payload::ImagingAssessed(img) = &mut r.event.payload { img.reported_response = None; }
            r
        }).collect();
        let stripped_p = project_all(&stripped, &view);
        for (p, s) in projections.iter().zip(&stripped_p) {
            prop_assert_eq!(p.as_ref().map(|p| p.labels.to_json_line()), s.as_ref().map(|s| s.labels.to_json_line()));
            prop_assert!(s.as_ref().is_none_or(|s| s.findings.iter().all(|f| f.kind != FindingKind::ReportedResponseMismatch)));
        }
        for p in projections.iter().flatten() {
            let l = &p.labels;
            for c in [&l.pfs1, &l.pfs2, &l.os].into_iter().flatten() {
                prop_assert_eq!(c.days, (c.end - c.start).num_days());
            }
            if let (Some(death), Some(pfs1)) = (l.death_date, &l.pfs1) {
                prop_assert!(pfs1.event && pfs1.end <= death);
                if death < pfs1.start {
                    prop_assert!(p.findings.iter().any(|f| f.kind == FindingKind::DeathBeforeClockStart));
                }
            }
            if let Some(pd2) = &l.pd2 {
                let pd1 = l.pd1.as_ref().expect("pd2 implies pd1");
                prop_assert!(pd1.date < pd2.date);
            }
            prop_assert_eq!(l.objective_response, l.best_response.map(|r| matches!(r, Response::CR | Response::PR)));
            if l.baseline.is_none() {
                prop_assert!(l.best_response.is_none() && l.pd1.is_none() && l.cbpd.is_none());
            }
            if l.index_date.is_none() {
                prop_assert!(l.rt.prior.is_none() && l.pfs1.is_none() && l.baseline.is_none());
            }
            let mut sorted = l.rt.salvage_modalities.clone();
            sorted.sort_by_key(|m| m.as_str());
            prop_assert_eq!(&sorted, &l.rt.salvage_modalities);
            // Every scan in view after the counted death is flagged (checked where no retraction
            // or correction can have hidden a scan).
            let tl = tls.iter().find(|t| t.pid == p.patient_id.as_str()).expect("timeline");
            if let (Some(death), false) = (l.death_date, has_links(tl)) {
                for e in tl.events.iter().filter(|e| {
                    matches!(e.payload, Payload::ImagingAssessed(_)) && e.occurred_on > death && e.occurred_on <= view.as_of
                }) {
                    prop_assert!(p.findings.iter().any(|f| f.kind == FindingKind::ScanAfterDeath && f.event_id == e.event_id));
                }
            }
            // Labels read back from their JSON.
            let back: registry_domain::labels::Labels = serde_json::from_str(&l.to_json_line()).expect("read back");
            prop_assert_eq!(&back, l);
        }
    }

    #[test]
    fn alerts_are_data_deterministic_by_facts_and_quiet_without_change(c in cohort(), seed in any::<u64>()) {
        let tls = build(&c);
        let events = all_recorded(&tls);
        let view = View::as_of(NaiveDate::from_ymd_opt(2017, 6, 1).expect("date"));
        let mut shuffled = events.clone();
        shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let a = project_all(&events, &view);
        let b = project_all(&shuffled, &view);
        for (pa, pb) in a.iter().zip(&b) {
            if let (Some(pa), Some(pb)) = (pa, pb) {
                let x = alerts_between(None, pa, None);
                let y = alerts_between(None, pb, None);
                prop_assert_eq!(serde_json::to_string(&x).ok(), serde_json::to_string(&y).ok());
                for al in &x {
                    prop_assert_eq!(&al.alert_id, &alert_id(al.kind, &al.patient_id, &al.facts));
                }
                prop_assert!(alerts_between(Some(pa), pa, None).is_empty());
            }
        }
        // Folding the arrivals one by one never panics and ends where the batch ends.
        let mut last: Vec<Option<PatientProjection>> = vec![None, None, None];
        for k in 1..=shuffled.len() {
            let now = project_all(&shuffled[..k], &view);
            for (before, after) in last.iter().zip(&now) {
                if let Some(after) = after {
                    let completing = shuffled[k - 1].event.event_id;
                    for al in alerts_between(before.as_ref(), after, Some(completing)) {
                        prop_assert_eq!(al.event_id, Some(completing));
                        prop_assert!(al.facts.is_object());
                    }
                }
            }
            last = now;
        }
        prop_assert_eq!(bytes(&last), bytes(&b));
    }
}
