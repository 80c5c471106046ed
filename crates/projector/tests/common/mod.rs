//! What the projector's integration tests share.

use registry_store::{NewEvent, Store};

/// Appends `events` to `store` in batches of 500, all received at `at` (µs since the epoch).
pub(crate) fn import(store: &Store, events: &[registry_domain::events::Event], at: i64) {
    let rows: Vec<(String, String, Vec<u8>)> = events
        .iter()
        .map(|e| (e.event_id.hyphenated().to_string(), e.patient_id.to_string(), e.canonical_json()))
        .collect();
    for chunk in rows.chunks(500) {
        let batch: Vec<NewEvent<'_>> = chunk
            .iter()
            .map(|(id, pid, c)| NewEvent { event_id: id, patient_id: pid, content: c, received_at_micros: at })
            .collect();
        store.append_batch(&batch).expect("append");
    }
}

/// What a catch-up leaves behind: the checkpoint, every label record (patient, bytes) and the
/// sorted ids of every stored alert.
#[allow(dead_code)] // not every test binary compares snapshots
pub(crate) type Snapshot = (u64, Vec<(String, Vec<u8>)>, Vec<String>);

#[allow(dead_code)]
pub(crate) fn snapshot(store: &Store) -> Snapshot {
    let labels = store.iter_labels().collect::<Result<Vec<_>, _>>().expect("labels");
    let mut alerts: Vec<String> =
        store.alerts_since(i64::MIN, usize::MAX).expect("alerts").into_iter().map(|a| a.alert_id).collect();
    alerts.sort();
    (store.labels_through_seq().expect("checkpoint"), labels, alerts)
}
