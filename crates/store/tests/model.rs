//! Property: any sequence of batches, with random duplicates and conflicts (within and across
//! batches, across reopen), leaves the same log as a simple in-memory model.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use registry_store::{AppendOutcome, NewEvent, Store};
use tempfile::TempDir;

#[derive(Debug, Clone)]
enum Step {
    /// (event id index, content variant); the patient is a function of the id, as for real events.
    Batch(Vec<(u8, u8)>),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec((0u8..12, 0u8..3), 0..8).prop_map(Step::Batch),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    by_id: HashMap<String, (u64, Vec<u8>)>,
    /// (content, patient, received_at) at index seq - 1
    log: Vec<(Vec<u8>, String, i64)>,
}

impl Model {
    fn append(&mut self, id: &str, patient: &str, content: &[u8], at: i64) -> AppendOutcome {
        match self.by_id.get(id) {
            Some((seq, c)) if c == content => AppendOutcome::Duplicate { seq: *seq },
            Some((seq, _)) => AppendOutcome::Conflict { existing_seq: *seq },
            None => {
                self.log.push((content.to_vec(), patient.to_owned(), at));
                let seq = self.log.len() as u64;
                self.by_id.insert(id.to_owned(), (seq, content.to_vec()));
                AppendOutcome::Accepted { seq }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_in_memory_model(steps in prop::collection::vec(step(), 1..12)) {
        let dir = TempDir::new().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let mut model = Model::default();
        let mut clock = 0i64;
        for step in steps {
            match step {
                Step::Reopen => {
                    drop(store);
                    store = Store::open(dir.path()).expect("reopen");
                }
                Step::Batch(items) => {
                    let owned: Vec<(String, String, Vec<u8>, i64)> = items
                        .iter()
                        .map(|&(id, variant)| {
                            clock += 1;
                            (
                                format!("ev-{id}"),
                                format!("P{}", id % 4),
                                format!("{{\"id\":{id},\"v\":{variant}}}").into_bytes(),
                                clock,
                            )
                        })
                        .collect();
                    let batch: Vec<NewEvent<'_>> = owned
                        .iter()
                        .map(|(id, p, c, at)| NewEvent {
                            event_id: id,
                            patient_id: p,
                            content: c,
                            received_at_micros: *at,
                        })
                        .collect();
                    let expected: Vec<AppendOutcome> = owned
                        .iter()
                        .map(|(id, p, c, at)| model.append(id, p, c, *at))
                        .collect();
                    let got = store.append_batch(&batch).expect("append");
                    prop_assert_eq!(got, expected);
                }
            }
        }
        let stored: Vec<(u64, Vec<u8>, i64)> = store
            .iter_from(1)
            .map(|e| e.map(|e| (e.seq, e.content, e.received_at_micros)).expect("read"))
            .collect();
        let modelled: Vec<(u64, Vec<u8>, i64)> = model
            .log
            .iter()
            .enumerate()
            .map(|(i, (c, _, at))| (i as u64 + 1, c.clone(), *at))
            .collect();
        prop_assert_eq!(stored, modelled);
        prop_assert_eq!(store.len(), model.log.len() as u64);

        let mut per_patient: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (i, (_, p, _)) in model.log.iter().enumerate() {
            per_patient.entry(p.clone()).or_default().push(i as u64 + 1);
        }
        prop_assert_eq!(store.patient_ids().expect("ids"), per_patient.keys().cloned().collect::<Vec<_>>());
        for (p, seqs) in &per_patient {
            let events = store.patient_events(p).expect("events");
            let got: Vec<u64> = events.iter().map(|e| e.seq).collect();
            prop_assert_eq!(&got, seqs);
            // Reading on from any point gives the rest of the same events (content included).
            for after in 0..=model.log.len() as u64 {
                let rest = store.patient_events_after(p, after).expect("events after");
                let expected: Vec<_> = events.iter().filter(|e| e.seq > after).cloned().collect();
                prop_assert_eq!(rest, expected);
            }
        }
        let report = store.verify_chain(|_| {}).expect("chain verifies");
        prop_assert_eq!(report.events, model.log.len() as u64);
    }
}
