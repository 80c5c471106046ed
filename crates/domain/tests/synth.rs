//! The synthetic cohort generator (`registry synth`): determinism, contract validity, sizes, a
//! large streaming run, and calibration of the pipeline's labels against the study (Ni et al. 2019).

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::events::{Agent, Event, EventType, Organ, Payload};
use registry_domain::findings::{Finding, FindingKind};
use registry_domain::labels::{BrainClass, Labels, Pattern, Response, RtFlags, Status};
use registry_domain::projection::project_patient;
use registry_domain::synth::{generate, patient_id_for, Profile, SynthConfig};
use registry_domain::validate::parse_event;
use registry_domain::view::{RecordedEvent, View};

fn cfg(patients: usize, seed: u64) -> SynthConfig {
    SynthConfig { patients, seed, profile: Profile::Ni2019 }
}

fn bytes(cfg: &SynthConfig) -> Vec<Vec<u8>> {
    generate(cfg).map(|e| e.canonical_json()).collect()
}

#[test]
fn profile_parses() {
    assert_eq!(Profile::parse("ni2019"), Some(Profile::Ni2019));
    assert_eq!(Profile::parse("NI2019"), Some(Profile::Ni2019));
    assert_eq!("ni2019".parse::<Profile>(), Ok(Profile::Ni2019));
    assert_eq!(Profile::parse("nope"), None);
    assert_eq!(Profile::Ni2019.as_str(), "ni2019");
    assert_eq!(SynthConfig::default(), cfg(93, 2019));
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a = bytes(&cfg(93, 2019));
    let b = bytes(&cfg(93, 2019));
    assert_eq!(a, b);
    let c = bytes(&cfg(93, 2020));
    assert_ne!(a, c);
    // the first patient alone differs between seeds too
    let first = |v: &[Vec<u8>]| v.iter().take(5).cloned().collect::<Vec<_>>();
    assert_ne!(first(&a), first(&c));
}

#[test]
fn patient_events_equal_the_stream() {
    let c = cfg(20, 7);
    let cohort = generate(&c);
    let one: Vec<Vec<u8>> = cohort.patient_events(3).iter().map(Event::canonical_json).collect();
    let from_stream: Vec<Vec<u8>> =
        generate(&c).filter(|e| e.patient_id.as_str() == "NI-00004").map(|e| e.canonical_json()).collect();
    assert_eq!(one, from_stream);
    assert!(!one.is_empty());
}

#[test]
fn every_event_passes_the_validator_unchanged() {
    for seed in [2019u64, 1, 42] {
        for e in generate(&cfg(93, seed)) {
            let raw = e.canonical_json();
            let parsed = parse_event(&raw).unwrap_or_else(|r| {
                panic!("seed {seed}: rejected {:?}: {}", r, String::from_utf8_lossy(&raw))
            });
            assert_eq!(parsed.canonical_json(), raw, "seed {seed}: re-encoding differs");
        }
    }
}

#[test]
fn small_and_odd_cohorts_are_valid() {
    assert_eq!(generate(&cfg(0, 1)).count(), 0);
    for n in 1..12 {
        for seed in [0u64, 3, u64::MAX] {
            let events: Vec<Event> = generate(&cfg(n, seed)).collect();
            let patients: BTreeSet<&str> = events.iter().map(|e| e.patient_id.as_str()).collect();
            assert_eq!(patients.len(), n);
            for e in &events {
                parse_event(&e.canonical_json()).unwrap_or_else(|r| panic!("n {n} seed {seed}: {r:?}"));
            }
        }
    }
}

#[test]
fn two_thousand_patients_pass_the_validator() {
    let mut n = 0;
    for e in generate(&cfg(2000, 99)) {
        let raw = e.canonical_json();
        parse_event(&raw).unwrap_or_else(|r| panic!("rejected {:?}: {}", r, String::from_utf8_lossy(&raw)));
        n += 1;
    }
    assert!(n > 2000 * 15);
}

#[test]
fn ids_dates_and_shape_of_93() {
    let c = cfg(93, 2019);
    let cutoff = Profile::Ni2019.data_cutoff();
    let events: Vec<Event> = generate(&c).collect();
    let mut ids = BTreeSet::new();
    let mut patients: Vec<String> = Vec::new();
    let mut enrolled = 0;
    let mut crizotinib = 0;
    let mut sites = BTreeSet::new();
    for e in &events {
        assert!(ids.insert(e.event_id), "event_id repeated: {}", e.event_id);
        assert_eq!(e.event_id.get_version_num(), 4);
        if patients.last().map(String::as_str) != Some(e.patient_id.as_str()) {
            assert!(!patients.contains(&e.patient_id.to_string()), "patients must come one after the other");
            patients.push(e.patient_id.to_string());
        }
        sites.insert(e.site_id.to_string());
        assert!(e.occurred_on <= cutoff, "{} after the cut-off", e.occurred_on);
        let rec = e.recorded_at.with_timezone(&Utc).date_naive();
        assert!(e.occurred_on <= rec + chrono::Days::new(1), "recorded before it happened: {:?}", e);
        assert!(e.occurred_on >= NaiveDate::from_ymd_opt(2008, 1, 1).unwrap_or_default());
        match &e.payload {
            Payload::PatientEnrolled(_) => enrolled += 1,
            Payload::TreatmentStarted(t) if t.agent == Agent::Crizotinib => crizotinib += 1,
            _ => {}
        }
    }
    let expected: Vec<String> = (0..93).map(patient_id_for).collect();
    assert_eq!(patients, expected);
    assert_eq!(patients[0], "NI-00001");
    assert_eq!(enrolled, 93);
    assert_eq!(crizotinib, 93);
    assert!(sites.len() >= 3, "{sites:?}");
    // the messiness is there
    assert!(events.iter().any(|e| e.supersedes.is_some()), "a correction");
    assert!(events.iter().any(|e| e.event_type() == EventType::EventRetracted), "a retraction");
    assert!(events.iter().any(|e| matches!(&e.payload, Payload::FollowupRecorded(f)
        if f.status == registry_domain::events::FollowupStatus::LostToFollowUp)));
    assert!(events.iter().any(|e| matches!(&e.payload, Payload::ImagingAssessed(i)
        if i.lesions.iter().any(|l| l.state == registry_domain::events::LesionState::NotEvaluated))));
    // lesion ids unique within every scan (also checked by the validator)
    for e in &events {
        if let Payload::ImagingAssessed(i) = &e.payload {
            let mut seen = BTreeSet::new();
            assert!(i.lesions.iter().all(|l| seen.insert(l.lesion_id.clone())));
        }
    }
    // a realistic size: 15–80 events per patient on average
    let per = events.len() as f64 / 93.0;
    assert!((15.0..80.0).contains(&per), "{per} events per patient");
}

#[test]
fn scales_proportionally() {
    // quotas scale: 186 patients carry twice the 93's brain-radiotherapy and enrolment counts
    let count = |n: usize| {
        generate(&cfg(n, 5))
            .filter(|e| matches!(&e.payload, Payload::RadiotherapyDelivered(r)
                if r.region == registry_domain::events::RtRegion::Brain))
            .count()
    };
    let small = count(93) as f64;
    let big = count(930) as f64;
    assert!(big > 6.0 * small && big < 14.0 * small, "{small} vs {big}");
}

#[test]
fn fifty_thousand_patients_stream() {
    let start = std::time::Instant::now();
    let mut n_events = 0usize;
    let mut n_patients = 0usize;
    let mut last = String::new();
    for e in generate(&cfg(50_000, 11)) {
        n_events += 1;
        if e.patient_id.as_str() != last {
            n_patients += 1;
            last = e.patient_id.to_string();
        }
    }
    assert_eq!(n_patients, 50_000);
    assert_eq!(last, "NI-50000");
    assert!(n_events > 50_000 * 15, "{n_events}");
    eprintln!("50,000 patients: {n_events} events in {:?}", start.elapsed());
}

// ------------------------------------------------------------------------------------------------
// Calibration: the pipeline's labels of the synthetic cohort against the study's figures
// ------------------------------------------------------------------------------------------------

/// Kaplan–Meier median (smallest time with S(t) ≤ 0.5); `None` when the curve stays above.
fn km_median(data: &[(i64, bool)]) -> Option<f64> {
    let mut v = data.to_vec();
    v.sort_by_key(|&(t, e)| (t, !e));
    let mut at_risk = v.len() as f64;
    let mut s = 1.0;
    let mut i = 0;
    while i < v.len() {
        let t = v[i].0;
        let mut d = 0.0;
        let mut c = 0.0;
        while i < v.len() && v[i].0 == t {
            if v[i].1 {
                d += 1.0;
            } else {
                c += 1.0;
            }
            i += 1;
        }
        if d > 0.0 {
            s *= 1.0 - d / at_risk;
            if s <= 0.5 {
                return Some(t as f64);
            }
        }
        at_risk -= d + c;
    }
    None
}

const MONTH: f64 = 30.4375;

fn months(days: Option<f64>) -> f64 {
    days.map(|d| d / MONTH).unwrap_or(f64::NAN)
}

/// The label-derived figures of a cohort.
#[derive(Debug, Default)]
pub struct Figures {
    n: usize,
    indexed: usize,
    cr: usize,
    pr: usize,
    sd: usize,
    pd: usize,
    ne: usize,
    bbm: usize,
    bbm_oligo: usize,
    prior_brain_rt: usize,
    prior_rt: usize,
    any_rt: usize,
    pd1: usize,
    of: usize,
    odf: usize,
    df: usize,
    brain_at_pd1: usize,
    sites: Vec<(Organ, usize)>,
    primary_only: usize,
    salvage_rt: usize,
    cand_wbrt: usize,
    cand_srs: usize,
    cand_sbrt: usize,
    cbpd: usize,
    pd2: usize,
    deaths: usize,
    pfs1_median_m: f64,
    pfs1_bbm_prior_m: f64,
    pfs1_bbm_no_prior_m: f64,
    pfs2_median_m: f64,
    pfs2_salvage_m: f64,
    pfs2_no_salvage_m: f64,
    pfs2_cbpd_m: f64,
    pfs2_no_cbpd_m: f64,
    followup_median_m: f64,
    os_rt_m: f64,
    os_no_rt_m: f64,
}

fn project_cohort(c: &SynthConfig) -> Vec<Labels> {
    project_cohort_with_findings(c).into_iter().map(|p| p.0).collect()
}

fn project_cohort_with_findings(c: &SynthConfig) -> Vec<(Labels, Vec<Finding>)> {
    let as_of = c.profile.data_cutoff();
    let view = View::as_of(as_of);
    let config = Config::default();
    let mut out = Vec::new();
    let mut current: Vec<RecordedEvent> = Vec::new();
    let flush = |evs: &mut Vec<RecordedEvent>, out: &mut Vec<(Labels, Vec<Finding>)>| {
        if let Some(first) = evs.first() {
            let pid = first.event.patient_id.clone();
            let p = project_patient(&pid, evs, &view, &config).expect("every generated patient is listed");
            out.push((p.labels, p.findings));
        }
        evs.clear();
    };
    for (seq, e) in generate(c).enumerate() {
        if current.first().is_some_and(|f| f.event.patient_id != e.patient_id) {
            flush(&mut current, &mut out);
        }
        let received_at = e.recorded_at.with_timezone(&Utc);
        current.push(RecordedEvent { event: e, seq: seq as u64, received_at });
    }
    flush(&mut current, &mut out);
    out
}

fn figures(labels: &[Labels]) -> Figures {
    let mut f = Figures { n: labels.len(), ..Figures::default() };
    let mut pfs1 = Vec::new();
    let mut pfs1_bbm_prior = Vec::new();
    let mut pfs1_bbm_no = Vec::new();
    let mut pfs2 = Vec::new();
    let mut pfs2_salv = (Vec::new(), Vec::new());
    let mut pfs2_cbpd = (Vec::new(), Vec::new());
    let mut os_rt = (Vec::new(), Vec::new());
    let mut follow = Vec::new();
    let mut sites: std::collections::BTreeMap<Organ, usize> = Default::default();
    for l in labels {
        if l.status == Status::Indexed {
            f.indexed += 1;
        }
        match l.best_response {
            Some(Response::CR) => f.cr += 1,
            Some(Response::PR) => f.pr += 1,
            Some(Response::SD) => f.sd += 1,
            Some(Response::PD) => f.pd += 1,
            Some(Response::NE) => f.ne += 1,
            None => {}
        }
        let rt: &RtFlags = &l.rt;
        let bbm = l.baseline.as_ref().is_some_and(|b| b.bbm);
        if bbm {
            f.bbm += 1;
        }
        if l.baseline.as_ref().is_some_and(|b| b.bbm_class == Some(BrainClass::Oligo)) {
            f.bbm_oligo += 1;
        }
        if rt.prior_brain == Some(true) {
            f.prior_brain_rt += 1;
        }
        if rt.prior == Some(true) {
            f.prior_rt += 1;
        }
        if rt.any {
            f.any_rt += 1;
        }
        if let Some(c) = &l.pfs1 {
            pfs1.push((c.days, c.event));
            if bbm {
                if rt.prior_brain == Some(true) {
                    pfs1_bbm_prior.push((c.days, c.event));
                } else {
                    pfs1_bbm_no.push((c.days, c.event));
                }
            }
        }
        if let Some(p) = &l.pd1 {
            f.pd1 += 1;
            match p.pattern {
                Pattern::OF => f.of += 1,
                Pattern::ODF => f.odf += 1,
                Pattern::DF => f.df += 1,
            }
            if p.sites.contains(&Organ::Brain) {
                f.brain_at_pd1 += 1;
            }
            for s in &p.sites {
                *sites.entry(*s).or_default() += 1;
            }
            if p.extent == Some(registry_domain::labels::Extent::PrimaryOnly) {
                f.primary_only += 1;
            }
            match p.salvage_candidate {
                registry_domain::labels::SalvageCandidate::Wbrt => f.cand_wbrt += 1,
                registry_domain::labels::SalvageCandidate::Srs => f.cand_srs += 1,
                registry_domain::labels::SalvageCandidate::Sbrt => f.cand_sbrt += 1,
                registry_domain::labels::SalvageCandidate::None => {}
            }
            if rt.salvage == Some(true) {
                f.salvage_rt += 1;
            }
            if l.cbpd == Some(true) {
                f.cbpd += 1;
            }
            if let Some(c) = &l.pfs2 {
                pfs2.push((c.days, c.event));
                let s = if rt.salvage == Some(true) { &mut pfs2_salv.0 } else { &mut pfs2_salv.1 };
                s.push((c.days, c.event));
                let s = if l.cbpd == Some(true) { &mut pfs2_cbpd.0 } else { &mut pfs2_cbpd.1 };
                s.push((c.days, c.event));
            }
        }
        if l.pd2.is_some() {
            f.pd2 += 1;
        }
        if l.death_date.is_some() {
            f.deaths += 1;
        }
        if let (Some(os), Some(t0)) = (&l.os, l.index_date) {
            follow.push((os.end - t0).num_days() as f64);
            let s = if rt.any { &mut os_rt.0 } else { &mut os_rt.1 };
            s.push((os.days, os.event));
        }
    }
    f.sites = sites.into_iter().collect();
    f.pfs1_median_m = months(km_median(&pfs1));
    f.pfs1_bbm_prior_m = months(km_median(&pfs1_bbm_prior));
    f.pfs1_bbm_no_prior_m = months(km_median(&pfs1_bbm_no));
    f.pfs2_median_m = months(km_median(&pfs2));
    f.pfs2_salvage_m = months(km_median(&pfs2_salv.0));
    f.pfs2_no_salvage_m = months(km_median(&pfs2_salv.1));
    f.pfs2_cbpd_m = months(km_median(&pfs2_cbpd.0));
    f.pfs2_no_cbpd_m = months(km_median(&pfs2_cbpd.1));
    f.os_rt_m = months(km_median(&os_rt.0));
    f.os_no_rt_m = months(km_median(&os_rt.1));
    follow.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    f.followup_median_m = follow.get(follow.len() / 2).copied().unwrap_or(f64::NAN) / MONTH;
    f
}

fn report(seed: u64, f: &Figures) -> String {
    let n = f.n as f64;
    let share = |x: usize, of: usize| if of == 0 { f64::NAN } else { x as f64 / of as f64 };
    format!(
        "seed {seed}: n {} indexed {} | BOR CR {} PR {} SD {} PD {} NE {} ORR {:.3} DCR {:.3} | BBM {} oligo {} prior-brain-RT {} prior-RT {} any-RT {} | \
         PD1 {} OF {} ODF {} DF {} (OF {:.2} ODF {:.2} DF {:.2}) brain {} primary-only {} sites {:?} | cand wbrt {} srs {} sbrt {} salvage-RT {} CBPD {} | PD2 {} deaths {} | \
         median months: follow-up {:.1} PFS1 {:.1} (BBM prior brain RT {:.1} vs none {:.1}) PFS2 {:.1} (salvage {:.1} vs {:.1}; CBPD {:.1} vs {:.1}) OS any-RT {:.1} vs {:.1}",
        f.n, f.indexed, f.cr, f.pr, f.sd, f.pd, f.ne, share(f.cr + f.pr, f.n), share(f.cr + f.pr + f.sd, f.n),
        f.bbm, f.bbm_oligo, f.prior_brain_rt, f.prior_rt, f.any_rt,
        f.pd1, f.of, f.odf, f.df, share(f.of, f.pd1), share(f.odf, f.pd1), share(f.df, f.pd1), f.brain_at_pd1, f.primary_only,
        f.sites.iter().map(|(o, c)| format!("{}:{c}", o.as_str())).collect::<Vec<_>>(),
        f.cand_wbrt, f.cand_srs, f.cand_sbrt, f.salvage_rt, f.cbpd, f.pd2, f.deaths,
        f.followup_median_m, f.pfs1_median_m, f.pfs1_bbm_prior_m, f.pfs1_bbm_no_prior_m, f.pfs2_median_m, f.pfs2_salvage_m,
        f.pfs2_no_salvage_m, f.pfs2_cbpd_m, f.pfs2_no_cbpd_m, f.os_rt_m, f.os_no_rt_m,
    ) + &format!(" (n = {n})")
}

/// Study (n = 93): ORR 72.0 %, 52 PD1 (OF 50.0 / ODF 26.9 / DF 23.1 %), brain the most common site
/// (31 of 52), BBM 35 (15 oligo), prior brain RT 11, any RT 42, PFS1 median 11.5 months,
/// 28 PD2 with PFS2 median 7.0 months, 16 deaths, median follow-up 22 months.
#[test]
fn calibration_seed_2019_lands_in_the_study_bands() {
    let c = cfg(93, 2019);
    let projected = project_cohort_with_findings(&c);
    let labels: Vec<Labels> = projected.iter().map(|p| p.0.clone()).collect();
    let f = figures(&labels);
    // the only data-quality findings are the planted reported-response disagreements
    let findings: Vec<&Finding> = projected.iter().flat_map(|p| p.1.iter()).collect();
    for x in &findings {
        eprintln!("finding: {:?} {}", x.kind, x.message);
    }
    assert!(findings.iter().all(|x| x.kind == FindingKind::ReportedResponseMismatch), "{findings:?}");
    assert!((1..=3).contains(&findings.len()), "{} findings", findings.len());
    eprintln!("{}", report(2019, &f));
    assert_eq!(f.n, 93);
    assert_eq!(f.indexed, 93);
    let orr = (f.cr + f.pr) as f64 / 93.0;
    assert!((0.60..=0.85).contains(&orr), "ORR {orr}");
    assert!((40..=65).contains(&f.pd1), "PD1 {}", f.pd1);
    let of = f.of as f64 / f.pd1 as f64;
    assert!((0.35..=0.65).contains(&of), "OF share {of}");
    let df = f.df as f64 / f.pd1 as f64;
    assert!((0.10..=0.35).contains(&df), "DF share {df}");
    assert!((30..=40).contains(&f.bbm), "BBM {}", f.bbm);
    assert!((10..=20).contains(&f.bbm_oligo), "oligo BBM {}", f.bbm_oligo);
    assert!((9..=13).contains(&f.prior_brain_rt), "prior brain RT {}", f.prior_brain_rt);
    assert!((32..=52).contains(&f.any_rt), "any RT {}", f.any_rt);
    // brain is the most common site of first failure
    let brain = f.sites.iter().find(|(o, _)| *o == Organ::Brain).map(|s| s.1).unwrap_or(0);
    assert!(f.sites.iter().all(|(_, c)| *c <= brain), "{:?}", f.sites);
    assert!((8.0..=15.0).contains(&f.pfs1_median_m), "median PFS1 {}", f.pfs1_median_m);
    assert!(f.pfs1_bbm_prior_m.is_nan() || f.pfs1_bbm_prior_m > f.pfs1_bbm_no_prior_m, "prior brain RT helps PFS1");
    assert!((18..=40).contains(&f.pd2), "PD2 {}", f.pd2);
    assert!((4.0..=11.0).contains(&f.pfs2_median_m), "median PFS2 {}", f.pfs2_median_m);
    assert!((8..=26).contains(&f.deaths), "deaths {}", f.deaths);
    assert!((14.0..=30.0).contains(&f.followup_median_m), "median follow-up {}", f.followup_median_m);
    assert!(f.cbpd > 0 && f.cbpd < f.pd1);
}

/// Not a check: prints the figures of several seeds (`cargo test -p registry-domain --test synth
/// -- --ignored --nocapture`), the spread behind the bands in docs/synthetic-cohort.md.
#[test]
#[ignore = "report only"]
fn calibration_report_many_seeds() {
    for seed in [2019u64, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
        let f = figures(&project_cohort(&cfg(93, seed)));
        eprintln!("{}", report(seed, &f));
    }
    let projected = project_cohort_with_findings(&cfg(5000, 2019));
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for x in projected.iter().flat_map(|p| p.1.iter()) {
        *kinds.entry(x.kind.as_str()).or_default() += 1;
    }
    let labels: Vec<Labels> = projected.into_iter().map(|p| p.0).collect();
    eprintln!("{}", report(2019, &figures(&labels)));
    eprintln!("findings of 5000 patients: {kinds:?}");
}

/// Not a check: one patient's events in canonical order and its projection (`PID=NI-00071`).
#[test]
#[ignore = "debug"]
fn debug_patient() {
    let pid = std::env::var("PID").unwrap_or_else(|_| "NI-00071".into());
    let idx: usize = pid[3..].parse::<usize>().unwrap_or(1) - 1;
    let c = cfg(1000, 2019);
    let evs = generate(&c).patient_events(idx);
    let mut sorted = evs.clone();
    sorted.sort_by(registry_domain::view::canonical_cmp);
    for e in &sorted {
        eprintln!("{}", String::from_utf8_lossy(&e.canonical_json()));
    }
    let rec: Vec<RecordedEvent> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| RecordedEvent { event: e.clone(), seq: i as u64, received_at: e.recorded_at.with_timezone(&Utc) })
        .collect();
    let p = project_patient(&evs[0].patient_id, &rec, &View::as_of(c.profile.data_cutoff()), &Config::default());
    if let Some(p) = p {
        eprintln!("{}", p.labels.to_json_line());
        eprintln!("{:?}", p.timepoints);
        eprintln!("{:?}", p.findings);
    }
}

/// Not a check: the enrolment-level shape of a cohort (years, age, sex, stage, sizes, lesion counts).
#[test]
#[ignore = "report only"]
fn demographics_report() {
    let c = cfg(93, 2019);
    let mut diag_years: std::collections::BTreeMap<i32, usize> = Default::default();
    let mut t0_years: std::collections::BTreeMap<i32, usize> = Default::default();
    let mut ages = Vec::new();
    let mut sizes = Vec::new();
    let (mut male, mut adeno, mut ecog2, mut t34, mut n0, mut first_line) = (0, 0, 0, 0, 0, 0);
    use chrono::Datelike;
    for e in generate(&c) {
        match &e.payload {
            Payload::PatientEnrolled(p) => {
                *diag_years.entry(p.diagnosis_date.year()).or_default() += 1;
                ages.push(p.diagnosis_date.year() - i32::from(p.birth_year));
                sizes.push(p.primary_size_mm);
                male += usize::from(p.sex == registry_domain::events::Sex::Male);
                adeno += usize::from(p.histology == registry_domain::events::Histology::Adenocarcinoma);
                ecog2 += usize::from(p.ecog >= 2);
                t34 += usize::from(matches!(p.t_stage, registry_domain::events::TStage::T3 | registry_domain::events::TStage::T4));
                n0 += usize::from(p.n_stage == registry_domain::events::NStage::N0);
                first_line += usize::from(p.prior_systemic_lines == 0);
            }
            Payload::TreatmentStarted(t) if t.agent == Agent::Crizotinib => {
                *t0_years.entry(e.occurred_on.year()).or_default() += 1;
            }
            _ => {}
        }
    }
    ages.sort();
    sizes.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let labels = project_cohort(&c);
    let organs3 = labels.iter().filter(|l| l.baseline.as_ref().is_some_and(|b| b.metastatic_organs >= 3)).count();
    let lesions6 = labels.iter().filter(|l| l.baseline.as_ref().is_some_and(|b| b.metastatic_lesions >= 6)).count();
    eprintln!(
        "diagnosis years {diag_years:?}\nT0 years {t0_years:?}\nage median {} range {}-{}; male {male}; adeno {adeno}; ECOG>=2 {ecog2}; T3-4 {t34}; N0 {n0}; first line {first_line}; primary size median {} mm range {}-{}; metastatic organs>=3 (pipeline, nodes count) {organs3}; metastatic lesions>=6 {lesions6}",
        ages[ages.len() / 2], ages[0], ages[ages.len() - 1], sizes[sizes.len() / 2], sizes[0], sizes[sizes.len() - 1]
    );
}
