//! What the projector's benches share: appending events to a store, their knobs, their memory.

#![allow(dead_code, unreachable_pub)]

use registry_domain::events::Event;
use registry_store::{NewEvent, Store};

/// Appends `events` in one batch (canonical bytes), all received at `at` (Unix µs).
pub fn append(store: &Store, events: &[Event], at: i64) {
    let rows: Vec<(String, String, Vec<u8>)> = events
        .iter()
        .map(|e| (e.event_id.hyphenated().to_string(), e.patient_id.to_string(), e.canonical_json()))
        .collect();
    let batch: Vec<NewEvent<'_>> = rows
        .iter()
        .map(|(id, pid, c)| NewEvent { event_id: id, patient_id: pid, content: c, received_at_micros: at })
        .collect();
    store.append_batch(&batch).expect("append");
}

/// A `VmHWM:`/`VmRSS:`-style line of /proc/self/status, in MiB.
pub fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// A numeric knob from the environment, `default` when unset or unreadable.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
