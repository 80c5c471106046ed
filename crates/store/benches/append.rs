//! Append throughput: `Store::append_batch` versus raw sled writing the same key/value bytes.
//!
//! Custom harness (std::time), not criterion: one iteration is 1,000,000 appends in batches of
//! 1,000, each batch followed by one flush, which does not fit criterion's many-samples model.
//! Run: `cargo bench -p registry-store --bench append` (env BENCH_EVENTS, BENCH_BATCH to resize).
//! Both runs use fresh sled directories under the same temp dir and the same pre-generated
//! events; only the storage calls are timed (building the store's inputs or the raw key/values
//! is not). Raw sled = build a `sled::Batch` of the bytes the store writes (one segment of
//! chained frames with real hashes, as a sled value, and the head), `apply_batch`, `flush`. (The
//! store itself, since layout 3, writes the segment to its segment file, syncs it, then the
//! locator and head to sled and flushes: the baseline is what the issue names, raw sled.) With
//! BENCH_PER_EVENT_KEYS=1 it also times raw sled with one key per event plus two index keys.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use registry_store::{NewEvent, Store};
use sha2::{Digest, Sha256};

struct Event {
    id: String,
    patient: String,
    content: Vec<u8>,
    received_at: i64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate(n: usize) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let organs = ["lung", "liver", "brain", "bone", "adrenal", "regional_ln"];
    let responses = ["CR", "PR", "SD", "PD", "NE"];
    (0..n)
        .map(|i| {
            let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string();
            let patient = format!("FUSCC-{:05}", rng.random_range(0..5000));
            let lesions: Vec<String> = (0..4)
                .map(|l| {
                    format!(
                        r#"{{"lesion_id":"L{l}","organ":"{}","diameter_mm":{}}}"#,
                        organs[rng.random_range(0..organs.len())],
                        rng.random_range(3..90)
                    )
                })
                .collect();
            let content = format!(
                r#"{{"event_id":"{id}","event_type":"imaging.assessed","schema_version":1,"patient_id":"{patient}","site_id":"fuscc","occurred_on":"2016-{:02}-{:02}","recorded_at":"2016-05-04T09:12:00Z","supersedes":null,"payload":{{"modality":"ct","regions":["chest","abdomen","brain"],"lesions":[{}],"reported_response":"{}"}}}}"#,
                rng.random_range(1..13),
                rng.random_range(1..29),
                lesions.join(","),
                responses[rng.random_range(0..responses.len())],
            )
            .into_bytes();
            Event {
                id,
                patient,
                content,
                received_at: 1_700_000_000_000_000 + i as i64,
            }
        })
        .collect()
}

/// The exact key/values `Store::append_batch` writes for one batch (see docs/storage.md): one
/// segment (frames: seq ‖ id lengths ‖ record length ‖ event_id ‖ patient_id ‖ received_at ‖
/// prev ‖ hash ‖ bytes, with the real chain hashes) and the head.
fn raw_entries(batch: &[Event], seq: &mut u64, head: &mut [u8; 32]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let first = *seq + 1;
    let mut segment = Vec::new();
    for e in batch {
        *seq += 1;
        let (eid, pid) = (e.id.as_bytes(), e.patient.as_bytes());
        let mut h = Sha256::new();
        h.update(*head);
        h.update(seq.to_be_bytes());
        h.update(e.received_at.to_be_bytes());
        h.update((eid.len() as u16).to_be_bytes());
        h.update(eid);
        h.update((pid.len() as u16).to_be_bytes());
        h.update(pid);
        h.update(&e.content);
        let hash: [u8; 32] = h.finalize().into();
        segment.extend_from_slice(&seq.to_be_bytes());
        segment.extend_from_slice(&(eid.len() as u16).to_be_bytes());
        segment.extend_from_slice(&(pid.len() as u16).to_be_bytes());
        segment.extend_from_slice(&((72 + e.content.len()) as u32).to_be_bytes());
        segment.extend_from_slice(eid);
        segment.extend_from_slice(pid);
        segment.extend_from_slice(&e.received_at.to_be_bytes());
        segment.extend_from_slice(head);
        segment.extend_from_slice(&hash);
        segment.extend_from_slice(&e.content);
        *head = hash;
    }
    vec![
        ([&b"S"[..], &first.to_be_bytes()].concat(), segment),
        (b"H".to_vec(), [&seq.to_be_bytes()[..], &head[..]].concat()),
    ]
}

/// What one key per event costs (the store's first layout): the record under `L ‖ seq` plus the
/// two index keys, for the note in docs/storage.md on why the store writes segments.
fn per_event_entries(batch: &[Event], seq: &mut u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(batch.len() * 3);
    for e in batch {
        *seq += 1;
        let seq_be = seq.to_be_bytes();
        let mut record = vec![0u8; 72];
        record.extend_from_slice(&e.content);
        out.push(([&b"L"[..], &seq_be].concat(), record));
        out.push(([b"E", e.id.as_bytes()].concat(), [&seq_be[..], &[0u8; 32]].concat()));
        out.push(([b"P", e.patient.as_bytes(), b"\0", &seq_be].concat(), Vec::new()));
    }
    out
}

/// Writes `events` in batches with `entries` per batch into a fresh sled directory, one
/// `apply_batch` and one flush per batch; returns the time spent in sled calls only.
fn raw_run(
    dir: &std::path::Path,
    events: &[Event],
    batch_size: usize,
    mut entries: impl FnMut(&[Event]) -> Vec<(Vec<u8>, Vec<u8>)>,
) -> Duration {
    // Same sled configuration as Store::open.
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(registry_store::DEFAULT_CACHE_BYTES)
        .open()
        .expect("open raw sled");
    let tree = db.open_tree("log").expect("tree");
    let mut timed = Duration::ZERO;
    for chunk in events.chunks(batch_size) {
        let kvs = entries(chunk);
        let start = Instant::now();
        let mut batch = sled::Batch::default();
        for (k, v) in kvs {
            batch.insert(k, v);
        }
        tree.apply_batch(batch).expect("apply");
        db.flush().expect("flush");
        timed += start.elapsed();
    }
    drop(tree);
    drop(db);
    settle_disk();
    timed
}

/// Lets the kernel write back what the previous run left dirty, so one run's writeback does not
/// slow the next (untimed).
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n = env_usize("BENCH_EVENTS", 1_000_000);
    let batch_size = env_usize("BENCH_BATCH", 1_000);
    let t = Instant::now();
    let events = generate(n);
    let avg = events.iter().map(|e| e.content.len()).sum::<usize>() / n.max(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    println!(
        "generated {n} imaging events (avg {avg} bytes, 5000 patients) in {:.1?}; batches of {batch_size}, one flush each",
        t.elapsed()
    );
    let tmp = tempfile::tempdir().expect("tempdir");

    // Raw sled: the same bytes the store writes, same batch size, apply_batch + flush.
    let raw_time = {
        let (mut seq, mut head) = (0u64, [0u8; 32]);
        raw_run(&tmp.path().join("raw"), &events, batch_size, |chunk| {
            raw_entries(chunk, &mut seq, &mut head)
        })
    };
    let raw_rate = rate(n, raw_time);
    println!("raw sled apply_batch+flush: {raw_rate:>10.0} events/s ({raw_time:.2?})");

    let (store_time, verify_time) = {
        let store = Store::open(&tmp.path().join("store")).expect("open store");
        let mut timed = Duration::ZERO;
        for chunk in events.chunks(batch_size) {
            let batch: Vec<NewEvent<'_>> = chunk
                .iter()
                .map(|e| NewEvent {
                    event_id: &e.id,
                    patient_id: &e.patient,
                    content: &e.content,
                    received_at_micros: e.received_at,
                })
                .collect();
            let start = Instant::now();
            store.append_batch(&batch).expect("append");
            timed += start.elapsed();
        }
        assert_eq!(store.len(), n as u64);
        let start = Instant::now();
        let report = store.verify_chain(|_| {}).expect("verify");
        assert_eq!(report.events, n as u64);
        (timed, start.elapsed())
    };
    settle_disk();
    let reopen_time = {
        let start = Instant::now();
        let store = Store::open(&tmp.path().join("store")).expect("reopen store");
        assert_eq!(store.len(), n as u64);
        start.elapsed()
    };
    let store_rate = rate(n, store_time);
    println!("Store::append_batch:        {store_rate:>10.0} events/s ({store_time:.2?})");
    println!(
        "ratio store/raw: {:.2} (goal >= 0.5); goal >= 100000 events/s: {}",
        store_rate / raw_rate,
        if store_rate >= 100_000.0 { "met" } else { "NOT met" }
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
    println!("verify_chain over {n} events: {verify_time:.2?} ({:.0} events/s)", rate(n, verify_time));
    println!("Store::open of the {n}-event store (indexes rebuilt from the log): {reopen_time:.2?}");
    if std::env::var_os("BENCH_PER_EVENT_KEYS").is_some() {
        let mut seq = 0u64;
        let t = raw_run(&tmp.path().join("per-event"), &events, batch_size, |chunk| {
            per_event_entries(chunk, &mut seq)
        });
        println!(
            "for reference, raw sled with one key per event + 2 index keys: {:.0} events/s",
            rate(n, t)
        );
    }
}
