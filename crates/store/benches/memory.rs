//! Resident memory of a store that keeps appending: `Store::append_batch` of 600-byte events for a
//! fixed set of patients, in small batches (what a service fed at a steady rate does), with RSS
//! (VmRSS of /proc/self/status) printed every 20,000 events and the growth per event after the
//! first half. Flat is the goal: a service runs for as long as it is fed (docs/storage.md,
//! "Per-event memory").
//!
//! Run: `cargo bench -p registry-store --bench memory`; env BENCH_EVENTS (default 200,000),
//! BENCH_BATCH (events per append, default 2), BENCH_PATIENTS (default 1,000). Each append is
//! synced, so this takes about a minute at the defaults. BENCH_LABELS=1 also rewrites the label
//! record (2,500 bytes) of each appended event's patient after every append, with the checkpoint,
//! as the projector does: the churn of a fixed cohort's label records in sled.

use registry_store::{NewEvent, Store, StoreConfig};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let total = env_usize("BENCH_EVENTS", 200_000);
    let per = env_usize("BENCH_BATCH", 2).max(1);
    let patients = env_usize("BENCH_PATIENTS", 1_000).max(1);
    let dir = tempfile::TempDir::new().expect("tempdir");
    let config = StoreConfig { outbox: false, cache_bytes: Some(8 << 20) };
    let store = Store::open_with(dir.path(), &config).expect("open");
    let content = vec![b'x'; 600];
    let labels = std::env::var("BENCH_LABELS").is_ok_and(|v| v == "1");
    let mut samples = Vec::new();
    let mut n = 0;
    while n < total {
        let ids: Vec<(String, String)> = (0..per)
            .map(|i| (uuid::Uuid::new_v4().to_string(), format!("P{:05}", (n + i) % patients)))
            .collect();
        let events: Vec<NewEvent<'_>> = ids
            .iter()
            .map(|(e, p)| NewEvent { event_id: e, patient_id: p, content: &content, received_at_micros: 1 })
            .collect();
        store.append_batch(&events).expect("append");
        if labels {
            // A record that differs each time (as labels with new dates would).
            let record: Vec<u8> = (0..2_500).map(|i| b'a' + ((i + n) % 26) as u8).collect();
            let writes: Vec<(&str, Option<&[u8]>)> = ids.iter().map(|(_, p)| (p.as_str(), Some(record.as_slice()))).collect();
            store.put_labels_batch(writes, (n + per) as u64).expect("labels");
        }
        n += per;
        if n % 20_000 < per {
            let rss = rss_kib();
            println!("events {n:>9}  rss {rss:>8} KiB");
            samples.push((n, rss));
        }
    }
    let half = samples.iter().find(|s| s.0 >= total / 2).copied().unwrap_or((0, 0));
    let last = samples.last().copied().unwrap_or((0, 0));
    let per_event = (last.1 as f64 - half.1 as f64) * 1024.0 / (last.0 as f64 - half.0 as f64).max(1.0);
    println!(
        "{{\"bench\":\"store_memory\",\"labels\":{labels},\"events\":{total},\"batch\":{per},\"patients\":{patients},\"rss_half_kib\":{},\"rss_end_kib\":{},\"growth_bytes_per_event_second_half\":{per_event:.1}}}",
        half.1, last.1
    );
}
