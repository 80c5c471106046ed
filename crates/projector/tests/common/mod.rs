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
