//! A catch-up written in many chunks, or refolded on several threads, gives exactly the labels,
//! checkpoint and alerts of one written in a single chunk on one thread, for a full rebuild and
//! for an incremental step.

use registry_domain::config::Config;
use registry_domain::synth::{generate, Profile, SynthConfig};
use registry_projector::Projector;
use registry_store::Store;

mod common;
use common::{import, snapshot};

#[test]
fn chunked_threaded_and_single_chunk_catch_ups_agree_on_labels_checkpoint_and_alerts() {
    let cohort: Vec<_> = generate(&SynthConfig { patients: 300, seed: 2019, profile: Profile::Ni2019 }).collect();
    // Hold back the last 10 % of events for an incremental step.
    let split = cohort.len() * 9 / 10;
    let view_date = Profile::Ni2019.data_cutoff();
    let mut results = Vec::new();
    // (patients per chunk, threads): a chunk is split over threads from 64 patients per thread.
    for (chunk, threads) in [(100_000, 1), (7, 1), (150, 2), (100_000, 4)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let projector = Projector::new(store.clone(), Config::default()).with_chunk(chunk).with_threads(threads);
        import(&store, &cohort[..split], 1_600_000_000_000_000);
        let full = projector.catch_up(view_date).expect("rebuild");
        assert_eq!(full.patients, store.patient_ids().expect("ids").len());
        assert_eq!(full.through_seq, store.last_seq());
        let after_full = snapshot(&store);
        let before_step = store.last_seq();
        import(&store, &cohort[split..], 1_700_000_000_000_000);
        // With several threads, hand the new events over already decoded, as the service does:
        // each thread must get its patients' events.
        let step = if threads > 1 {
            let fresh: std::collections::HashMap<u64, registry_domain::events::Event> = (before_step + 1
                ..=store.last_seq())
                .map(|seq| {
                    let stored = store.get(seq).expect("get").expect("stored");
                    (seq, registry_domain::stored::decode(&stored.content).expect("decode"))
                })
                .collect();
            projector.catch_up_with(view_date, fresh).expect("incremental with fresh events")
        } else {
            projector.catch_up(view_date).expect("incremental")
        };
        assert!(step.patients > 0 && step.patients <= full.patients + 10);
        let after_step = snapshot(&store);
        assert!(projector.verify(|_| {}).expect("verify").is_empty(), "stored labels equal a replay");
        results.push((after_full, after_step, full.alerts, step.alerts));
    }
    assert!(!results[0].0 .2.is_empty(), "the cohort raises alerts");
    for (i, r) in results.iter().enumerate().skip(1) {
        assert_eq!(&results[0], r, "configuration {i} differs from one chunk on one thread");
    }
}

#[test]
fn stored_labels_and_alerts_are_the_json_of_their_value_form() {
    // The projector serialises label records and alerts straight from their structs; the bytes
    // must be what the earlier `serde_json::Value` round trip wrote (same field order, numbers
    // and nulls), so stores written before and after agree and `registry verify` stays exact.
    let cohort: Vec<_> = generate(&SynthConfig { patients: 60, seed: 7, profile: Profile::Ni2019 }).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    import(&store, &cohort, 1_600_000_000_000_000);
    let projector = Projector::new(store.clone(), Config::default());
    let done = projector.catch_up(Profile::Ni2019.data_cutoff()).expect("rebuild");
    assert!(done.alerts > 0);
    let (_, labels, _) = snapshot(&store);
    assert!(!labels.is_empty());
    for (patient, bytes) in &labels {
        let record: registry_projector::LabelRecord = serde_json::from_slice(bytes).expect("label record");
        assert_eq!(&serde_json::to_vec(&record).expect("json"), bytes, "labels of {patient}");
    }
    for alert in store.alerts_since(i64::MIN, usize::MAX).expect("alerts") {
        let value: serde_json::Value = serde_json::from_slice(&alert.body).expect("alert json");
        assert_eq!(serde_json::to_vec(&value).expect("json"), alert.body);
        assert_eq!(value["alert_id"].as_str(), Some(alert.alert_id.as_str()));
        assert_eq!(value["kind"].as_str(), Some(alert.kind.as_str()));
    }
}
