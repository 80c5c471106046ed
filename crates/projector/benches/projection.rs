//! Projection benchmark (issue: clinical projection). Imports a synthetic cohort of 50,000
//! patients (all their events: about 1,300,000, since the generator averages 26 events per
//! patient) into a real sled store, then, in a **second process** that only opens that store,
//! measures:
//! - parse: decoding every stored event (the floor any projection pays);
//! - parse on every core: the same, the log split in as many contiguous parts as the projector
//!   has threads, one thread each — the baseline of a rebuild that refolds on every core;
//! - full rebuild: `Projector::catch_up` from an empty checkpoint (every patient refolded);
//! - incremental: one batch touching 1 % of the patients, then `catch_up`.
//!
//! It prints the ratios the issue asks for and the second process's peak memory (VmHWM), which
//! is the memory of opening the store and rebuilding, not of generating the cohort.
//!
//! The measuring process runs BENCH_REPEAT times (default 3), each on a fresh copy of the store,
//! and the parent prints every run's ratios and their median.
//!
//! Run: `cargo bench -p registry-projector --bench projection` (env BENCH_PATIENTS to resize,
//! BENCH_EVENTS to cap the number of events, BENCH_THREADS for the projector's threads — default
//! the cores available; with 1 the rebuild is compared with the one-thread parse alone).
//!
//! For load-independent measures: `BENCH_STORE_DIR=<dir>` keeps the generated store there (and
//! reuses it, skipping the generation, when it already holds one; the measuring runs still work
//! on copies). `BENCH_STOP_AFTER=open|parse|ppar|rebuild` ends the measuring process (run alone
//! with `BENCH_PROJECTION_STORE=<a copy>`) after that phase — open, the first one-thread parse,
//! the first parse on BENCH_THREADS threads, the rebuild — so that an instruction counter that
//! sees only whole processes (`valgrind --tool=cachegrind`; this VM has no hardware counters for
//! `perf stat`) gives each phase as the difference of two runs.

use std::time::Instant;

/// The same allocator as the `registry` binary (crates/cli/src/main.rs), which runs the
/// projector in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use registry_domain::config::Config;
use registry_domain::events::{Event, FollowupStatus, Payload};
use registry_domain::stored;
use registry_domain::synth::{generate, Profile, SynthConfig};
use registry_projector::Projector;
use registry_store::Store;

mod common;
use common::{append, peak_rss_mib, rss_mib};

/// CPU seconds this process has used (user + system, all threads), from /proc/self/stat. On a
/// machine shared with other work, CPU time is far steadier than wall time: the ratios are
/// printed for both.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    ticks / 100.0
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t, c) = (Instant::now(), cpu_secs());
    let out = f();
    (out, t.elapsed().as_secs_f64(), cpu_secs() - c)
}

/// Ends the process here when `BENCH_STOP_AFTER` names `phase`.
fn stop_after(phase: &str) {
    if std::env::var("BENCH_STOP_AFTER").ok().as_deref() == Some(phase) {
        eprintln!("stopping after {phase} (BENCH_STOP_AFTER)");
        std::process::exit(0);
    }
}

fn parse_all(store: &Store) -> usize {
    let mut decoded = 0usize;
    for e in store.iter_from(1) {
        let e = e.expect("read");
        stored::decode(&e.content).expect("decode");
        decoded += 1;
    }
    decoded
}

/// [`parse_all`] on `threads` threads, each decoding one contiguous part of the log.
fn parse_parallel(store: &Store, threads: usize) -> usize {
    let n = store.last_seq();
    let per = n.div_ceil(threads as u64).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads as u64)
            .map(|i| {
                s.spawn(move || {
                    let mut decoded = 0usize;
                    for e in store.iter_from(1 + i * per).take(per as usize) {
                        let e = e.expect("read");
                        stored::decode(&e.content).expect("decode");
                        decoded += 1;
                    }
                    decoded
                })
            })
            .collect();
        parts.into_iter().map(|p| p.join().expect("parse thread")).sum()
    })
}

fn main() {
    if let Ok(dir) = std::env::var("BENCH_PROJECTION_STORE") {
        measure(std::path::Path::new(&dir));
        return;
    }
    let patients: usize = std::env::var("BENCH_PATIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let max_events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    let tmp = tempfile::tempdir().expect("tempdir");
    let kept = std::env::var_os("BENCH_STORE_DIR").map(std::path::PathBuf::from);
    let dir: &std::path::Path = kept.as_deref().unwrap_or(tmp.path());
    // Written once a generation completed (a store left half-generated is not reused).
    let marker = dir.join("bench-cohort.txt");
    if let Ok(what) = std::fs::read_to_string(&marker) {
        eprintln!("reusing the store in {} ({})", dir.display(), what.trim());
    } else {
        let store = Store::open(dir).expect("open store");
        let cfg = SynthConfig { patients, seed: 2019, profile: Profile::Ni2019 };
        let t = Instant::now();
        let mut buf = Vec::with_capacity(1000);
        let mut n = 0usize;
        for e in generate(&cfg).take(max_events) {
            buf.push(e);
            n += 1;
            if buf.len() == 1000 {
                append(&store, &buf, 1_600_000_000_000_000);
                buf.clear();
            }
        }
        append(&store, &buf, 1_600_000_000_000_000);
        let n_patients = store.patient_ids().expect("patients").len();
        eprintln!("imported {n} events of {n_patients} patients in {:.1} s", t.elapsed().as_secs_f64());
        drop(store);
        if kept.is_some() {
            std::fs::write(&marker, format!("{n} events of {n_patients} patients, seed 2019\n")).expect("marker");
        }
    }
    // The measurement runs in a fresh process over a copy of the stored directory, so that its
    // peak memory is the rebuild's, not the generator's; BENCH_REPEAT times (default 3), each
    // on its own copy, since one run on a shared machine can be off by a third.
    let repeat: usize = std::env::var("BENCH_REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let mut ratios: Vec<(f64, f64)> = Vec::new();
    for run in 1..=repeat {
        let copy = tempfile::tempdir().expect("tempdir for the copy");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(copy.path())
            .status()
            .expect("cp");
        assert!(status.success(), "copying the store failed: {status}");
        println!("--- run {run} of {repeat}");
        let out = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_PROJECTION_STORE", copy.path())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("spawn the measuring process");
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            match line.strip_prefix("RATIO ") {
                Some(r) => {
                    let v: Vec<f64> = r.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                    if let [wall, cpu] = v[..] {
                        ratios.push((wall, cpu));
                    }
                }
                None => println!("{line}"),
            }
        }
        assert!(out.status.success(), "measuring process failed: {}", out.status);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "rebuild / parse over {} runs (each against the parse on as many threads, same process): median {:.2} x by wall, {:.2} x by CPU; by wall {:?}; by CPU {:?} (goal <= 3)",
        ratios.len(),
        median(ratios.iter().map(|r| r.0).collect()),
        median(ratios.iter().map(|r| r.1).collect()),
        ratios.iter().map(|r| (r.0 * 100.0).round() / 100.0).collect::<Vec<_>>(),
        ratios.iter().map(|r| (r.1 * 100.0).round() / 100.0).collect::<Vec<_>>(),
    );
}

fn measure(dir: &std::path::Path) {
    let t = Instant::now();
    let store = Store::open(dir).expect("open store");
    println!("store opened (indexes rebuilt) in {:.2} s; {} events", t.elapsed().as_secs_f64(), store.len());
    eprintln!("after open: RSS {:.0} MiB, peak {:.0} MiB", rss_mib(), peak_rss_mib());
    // Parse: decode every event from the store. Run again after the rebuild; the faster of the two
    // runs is the baseline (the first one also warms the OS page cache for the rebuild).
    stop_after("open");
    let (decoded, parse_wall, parse_cpu) = timed(|| parse_all(&store));
    stop_after("parse");
    eprintln!("after parse: RSS {:.0} MiB, peak {:.0} MiB", rss_mib(), peak_rss_mib());

    // Full rebuild from an empty checkpoint.
    let view_date = registry_domain::synth::Profile::Ni2019.data_cutoff();
    let threads: usize = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
        .max(1);
    let (decoded_p, ppar_wall, ppar_cpu) = timed(|| parse_parallel(&store, threads));
    assert_eq!(decoded_p, decoded, "the parallel parse decodes every event once");
    stop_after("ppar");
    let mut projector = Projector::new(store.clone(), Config::default()).with_threads(threads);
    if let Some(chunk) = std::env::var("BENCH_CHUNK").ok().and_then(|s| s.parse().ok()) {
        projector = projector.with_chunk(chunk);
    }
    let (full, rebuild, rebuild_cpu) = timed(|| projector.catch_up(view_date).expect("rebuild"));
    stop_after("rebuild");
    let (_, parse_wall2, parse_cpu2) = timed(|| parse_all(&store));
    let (_, ppar_wall2, ppar_cpu2) = timed(|| parse_parallel(&store, threads));
    let (parse, parse_cpu) = (parse_wall.min(parse_wall2), parse_cpu.min(parse_cpu2));
    let (ppar, ppar_cpu) = (ppar_wall.min(ppar_wall2), ppar_cpu.min(ppar_cpu2));
    eprintln!("after rebuild ({} alerts): RSS {:.0} MiB, peak {:.0} MiB", full.alerts, rss_mib(), peak_rss_mib());

    // Incremental: one follow-up for 1 % of the patients.
    let ids = store.patient_ids().expect("patients");
    let step = 100;
    let extra: Vec<Event> = ids
        .iter()
        .step_by(step)
        .enumerate()
        .map(|(i, pid)| {
            let first = store.patient_events(pid).expect("events");
            let mut e = stored::decode(&first[0].content).expect("decode");
            e.event_id = uuid::Uuid::from_u128(0xbe9c_0000_0000_4000_8000_0000_0000_0000 | i as u128);
            e.supersedes = None;
            e.occurred_on = view_date;
            e.payload = Payload::FollowupRecorded(registry_domain::events::Followup { status: FollowupStatus::Alive });
            e
        })
        .collect();
    append(&store, &extra, 1_700_000_000_000_000);
    let (inc, incremental, incremental_cpu) = timed(|| projector.catch_up(view_date).expect("incremental"));

    println!("events decoded: {decoded}; patients rebuilt: {}; incremental patients: {}", full.patients, inc.patients);
    println!("load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    println!("parse only:        {parse:8.2} s wall, {parse_cpu:8.2} s CPU  ({:.0} events/s; runs {parse_wall:.2} / {parse_wall2:.2} s)", decoded as f64 / parse);
    if threads > 1 {
        println!(
            "parse, {threads} threads:  {ppar:8.2} s wall, {ppar_cpu:8.2} s CPU  (runs {ppar_wall:.2} / {ppar_wall2:.2} s)"
        );
        println!(
            "full rebuild ({threads} threads): {rebuild:5.2} s wall, {rebuild_cpu:8.2} s CPU  = {:.2} x the {threads}-thread parse by wall, {:.2} x by CPU; {:.2} x the 1-thread parse by wall, {:.2} x by CPU (goal <= 3)",
            rebuild / ppar,
            rebuild_cpu / ppar_cpu,
            rebuild / parse,
            rebuild_cpu / parse_cpu
        );
    } else {
        println!(
            "full rebuild:      {rebuild:8.2} s wall, {rebuild_cpu:8.2} s CPU  = {:.2} x parse by wall, {:.2} x by CPU (goal <= 3)",
            rebuild / parse,
            rebuild_cpu / parse_cpu
        );
    }
    println!(
        "incremental (1 %): {incremental:8.3} s wall, {incremental_cpu:8.3} s CPU  = {:.2} % of the rebuild by wall, {:.2} % by CPU (goal <= 2 %)",
        100.0 * incremental / rebuild,
        100.0 * incremental_cpu / rebuild_cpu
    );
    println!("peak memory of this process (open + parse + rebuild + incremental, VmHWM): {:.0} MiB (goal < 1024)", peak_rss_mib());
    // For the parent: this run's ratio against the parse on as many threads.
    let (base, base_cpu) = if threads > 1 { (ppar, ppar_cpu) } else { (parse, parse_cpu) };
    println!("RATIO {} {}", rebuild / base, rebuild_cpu / base_cpu);
}
