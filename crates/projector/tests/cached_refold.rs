//! The refold cache only saves work: a projector that keeps recently refolded patients (with a
//! budget that never evicts, and one so small that it evicts all the time, with the admission
//! rule and with plain least-recently-used admission) writes exactly the
//! labels, checkpoint and alerts of one that reads every patient from the log, step after step
//! of a live-like feed: patients interleaved, small appends, the view date moving on, and a
//! retraction that names another patient's event (the link the cache must not keep a projection
//! across).

use registry_domain::config::Config;
use registry_domain::events::{Event, Payload, PatientId, Retraction};
use registry_domain::synth::{generate, Profile, SynthConfig};
use registry_projector::{Projector, MIN_IDLE};
use registry_store::Store;

mod common;
use common::{import, snapshot};

/// The cohort's events with the patients interleaved (one event of each patient in turn), as
/// hospitals would send them over time.
fn interleaved(patients: usize) -> Vec<Event> {
    let cohort: Vec<Event> = generate(&SynthConfig { patients, seed: 11, profile: Profile::Ni2019 }).collect();
    let mut per: std::collections::BTreeMap<String, std::collections::VecDeque<Event>> = Default::default();
    for e in cohort {
        per.entry(e.patient_id.to_string()).or_default().push_back(e);
    }
    let mut out = Vec::new();
    while per.values().any(|q| !q.is_empty()) {
        for q in per.values_mut() {
            out.extend(q.pop_front());
        }
    }
    out
}

#[test]
fn a_cached_projector_writes_what_an_uncached_one_writes_step_by_step() {
    let mut events = interleaved(80);
    // A retraction filed under the second patient naming one of the first patient's events:
    // the fold must see it, ignore it and say so, with or without the cache.
    let first = events[0].clone();
    let second = events.iter().find(|e| e.patient_id != first.patient_id).expect("two patients").clone();
    let mut cross = second.clone();
    cross.event_id = uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);
    cross.supersedes = None;
    cross.payload = Payload::EventRetracted(Retraction { target_event_id: first.event_id, reason: "wrong patient".to_owned() });
    assert_eq!(cross.patient_id, PatientId::parse(second.patient_id.as_str()).expect("id"));
    events.insert(events.len() / 2, cross);

    let cutoff = Profile::Ni2019.data_cutoff();
    // (budget, admit a new entry only over entries idle this long)
    let no_wait = std::time::Duration::ZERO;
    let configs = [(0usize, MIN_IDLE), (1_000_000, MIN_IDLE), (40, MIN_IDLE), (40, no_wait)];
    let dirs: Vec<_> = configs.iter().map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let projectors: Vec<Projector> = configs
        .iter()
        .zip(&dirs)
        .map(|(&(budget, min_idle), dir)| {
            let store = Store::open(dir.path()).expect("open");
            Projector::new(store, Config::default()).with_cache(budget, min_idle)
        })
        .collect();
    let steps = 30;
    let per_step = events.len().div_ceil(steps);
    let mut alerts_seen = 0;
    for (i, part) in events.chunks(per_step).enumerate() {
        // The view date moves on by 250 days a third of the way through and again at two
        // thirds, ending at the cut-off (events after a view date are not in that view, so
        // the labels change with it): a cached projection from an earlier view must not stand
        // in for "before".
        let view_date = cutoff - chrono::Days::new(250 * (2 - (i * 3 / steps) as u64));
        let mut snaps = Vec::new();
        for p in &projectors {
            import(p.store(), part, 1_600_000_000_000_000 + i as i64);
            p.catch_up(view_date).expect("catch-up");
            snaps.push(snapshot(p.store()));
        }
        for (k, s) in snaps.iter().enumerate().skip(1) {
            if s != &snaps[0] {
                let differ: Vec<&String> =
                    s.1.iter().zip(&snaps[0].1).filter(|(a, b)| a != b).map(|(a, _)| &a.0).collect();
                panic!(
                    "step {i}: cache (budget, min idle) {:?} differs from no cache: checkpoint {} vs {}, labels of {differ:?}, {} vs {} alerts",
                    configs[k], s.0, snaps[0].0, s.2.len(), snaps[0].2.len()
                );
            }
        }
        alerts_seen = snaps[0].2.len();
    }
    assert!(alerts_seen > 0, "the feed raises alerts");
    let (held, patients) = projectors[1].cache_size();
    assert_eq!(patients, 80, "the large budget keeps every patient");
    assert_eq!(held, events.len(), "… and every event");
    assert!(projectors[2].cache_size().0 <= 40, "the small budget holds");
    assert!(projectors[3].cache_size().0 <= 40, "the small budget holds");
    assert_eq!(projectors[0].cache_size(), (0, 0), "no budget, nothing kept");
}
