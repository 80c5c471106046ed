//! Resident memory of the projector's catch-up alone, in one process, with no bus: an NDJSON
//! feed (the events `scripts/bench --soak` feeds, or any `registry synth` output) is appended in
//! small batches, each followed by `catch_up_with` (the batch handed over decoded, as the
//! service does), with RSS (VmRSS) printed every BENCH_SAMPLE events (default 10,000). It tells
//! apart memory the fold and store take from memory the NATS side of the service takes
//! (docs/bus.md, "Memory soak").
//!
//! Run: `BENCH_FEED=soak.ndjson cargo bench -p registry-projector --bench refold_memory`; env
//! BENCH_BATCH (events per append and catch-up, default 10), BENCH_CACHE_EVENTS (the refold
//! cache's budget, default the service's), BENCH_EVENTS (stop after this many).

/// The same allocator as the `registry` binary, which runs the projector in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::io::BufRead;

use registry_domain::config::Config;
use registry_projector::{Projector, DEFAULT_CACHE_EVENTS};
use registry_store::Store;

mod common;
use common::{append, env_usize, rss_mib};

fn main() {
    let Ok(feed) = std::env::var("BENCH_FEED") else {
        eprintln!("refold_memory: set BENCH_FEED to an NDJSON file of events (skipped)");
        return;
    };
    let batch = env_usize("BENCH_BATCH", 10).max(1);
    let sample = env_usize("BENCH_SAMPLE", 10_000).max(1);
    let limit = env_usize("BENCH_EVENTS", usize::MAX);
    let cache = env_usize("BENCH_CACHE_EVENTS", DEFAULT_CACHE_EVENTS);
    let dir = tempfile::TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let projector = Projector::new(store.clone(), Config::default()).with_cache_events(cache);
    // The service projects in the view of today.
    let view_date = chrono::Utc::now().date_naive();
    let file = std::io::BufReader::new(std::fs::File::open(&feed).expect("open BENCH_FEED"));
    let events: Vec<registry_domain::events::Event> = file
        .lines()
        .take(limit)
        .map(|l| registry_domain::validate::parse_event(l.expect("read").as_bytes()).expect("a valid event"))
        .collect();
    let t0 = std::time::Instant::now();
    let mut samples = Vec::new();
    for (i, part) in events.chunks(batch).enumerate() {
        let first = store.last_seq() + 1;
        append(&store, part, 1_700_000_000_000_000);
        let fresh: HashMap<u64, registry_domain::events::Event> =
            part.iter().cloned().enumerate().map(|(k, e)| (first + k as u64, e)).collect();
        projector.catch_up_with(view_date, fresh).expect("catch-up");
        let n = (i + 1) * batch;
        if n % sample < batch {
            let rss = rss_mib();
            println!("events {n:>8}  rss {rss:>7.1} MiB  cache {:?}  {:.0} s", projector.cache_size(), t0.elapsed().as_secs_f64());
            samples.push((n, rss));
        }
    }
    let half = samples.iter().find(|s| s.0 >= events.len() / 2).copied().unwrap_or((0, 0.0));
    let last = samples.last().copied().unwrap_or((0, 0.0));
    println!(
        "{{\"bench\":\"refold_memory\",\"events\":{},\"batch\":{batch},\"cache_events\":{cache},\"rss_half_mib\":{:.1},\"rss_end_mib\":{:.1},\"seconds\":{:.1}}}",
        events.len(),
        half.1,
        last.1,
        t0.elapsed().as_secs_f64()
    );
}
