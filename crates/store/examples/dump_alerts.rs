//! Prints the alerts of a store (its `--data` directory's projector store, or a store directory)
//! as NDJSON in history order: batch (the n-th distinct raised_at, from 0), alert_id, kind and the
//! body; then the alert_ids pending in the outbox. For comparing two builds' stores byte for byte
//! (raised_at itself is the wall clock of the run, so only its order is printed).
//!
//! Run: `cargo run --release -p registry-store --example dump_alerts -- <store dir>`

fn main() {
    let dir = std::env::args().nth(1).expect("usage: dump_alerts <store dir>");
    let store = registry_store::Store::open(std::path::Path::new(&dir)).expect("open store");
    let mut batch = -1i64;
    let mut last = None;
    for a in store.alerts_since(i64::MIN, usize::MAX).expect("alerts") {
        if last != Some(a.raised_at_micros) {
            batch += 1;
            last = Some(a.raised_at_micros);
        }
        println!("{batch}\t{}\t{}\t{}", a.alert_id, a.kind, String::from_utf8_lossy(&a.body));
    }
    for p in store.alert_outbox_pending(usize::MAX).expect("outbox") {
        println!("pending\t{}", p.alert_id);
    }
}
