//! The measuring half of `scripts/bench-api` (docs/api.md and docs/report.md, "Benchmark").
//!
//! ```text
//! bench_api ids    --data DIR [--sample N]                        patient ids of the store, N spread evenly
//! bench_api baseline --data DIR [--value-decoder]               open, read and decode the whole log
//! bench_api load   --url URL --token T --concurrency C --requests N [--ids FILE] [--query Q] PATH
//! ```
//!
//! `baseline` times, over one store: opening it, reading every event of the log and decoding each
//! (one thread): merely loading the store, the floor of any report. One JSON line on stdout.
//!
//! `load` sends N GET requests with C in flight at all times (C workers on one keep-alive client)
//! and measures each request from send to the last body byte. PATH may hold `{id}`, replaced in
//! turn by the ids of `--ids` (one a line). One JSON line on stdout: requests, errors, status
//! counts, requests/s, latency percentiles in ms and the CPU seconds the generator itself used
//! (`generator_cpu_s`). Progress goes to stderr.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use registry_domain::config::Config;
use registry_projector::Projector;
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn need(args: &[String], name: &str) -> Res<String> {
    arg(args, name).ok_or_else(|| format!("{name} is required").into())
}

/// A progress line on stderr, rewritten in place on a terminal, every `every` steps.
struct Progress {
    what: &'static str,
    total: usize,
    tty: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Progress {
        let now = Instant::now();
        Progress { what, total, tty: std::io::stderr().is_terminal(), started: now, last: now }
    }
    fn tick(&mut self, done: usize) {
        let now = Instant::now();
        if now.duration_since(self.last) < Duration::from_millis(if self.tty { 200 } else { 5000 }) && done < self.total {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.started).as_secs_f64();
        let line = format!("  {}: {done}/{} ({:.1} s)", self.what, self.total, secs);
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K{line}");
            if done >= self.total {
                let _ = writeln!(e);
            }
        } else {
            let _ = writeln!(e, "{line}");
        }
    }
}

fn open(data: &str) -> Res<Projector> {
    let dir = PathBuf::from(data).join("store");
    let store = registry_store::Store::open(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    Ok(Projector::new(store, Config::default()))
}

fn ids(args: &[String]) -> Res<()> {
    let projector = open(&need(args, "--data")?)?;
    let all = projector.store().patient_ids()?;
    let sample: usize = arg(args, "--sample").map(|s| s.parse()).transpose()?.unwrap_or(all.len()).min(all.len()).max(1);
    let step = all.len() as f64 / sample as f64;
    let mut out = std::io::stdout().lock();
    for i in 0..sample {
        if let Some(id) = all.get((i as f64 * step) as usize) {
            writeln!(out, "{id}")?;
        }
    }
    Ok(())
}

fn baseline(args: &[String]) -> Res<()> {
    let dir = PathBuf::from(need(args, "--data")?).join("store");
    // `--value-decoder`: decode through a `serde_json::Value` (the decoder before issue 6), to compare.
    let via_value = args.iter().any(|a| a == "--value-decoder");
    // 1. Open (the store rebuilds its in-memory indexes from the log).
    let t = Instant::now();
    let store = registry_store::Store::open(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let open_s = t.elapsed().as_secs_f64();
    // 2. Read every event, 3. decode every event (one thread): what any report must do at least.
    let total = usize::try_from(store.last_seq()).unwrap_or(0);
    let mut progress = Progress::new("read and decode every event", total);
    let (mut read_s, mut decode_s, mut n, mut bytes) = (0.0, 0.0, 0usize, 0usize);
    let mut t = Instant::now();
    for e in store.iter_from(1) {
        let e = e?;
        read_s += t.elapsed().as_secs_f64();
        t = Instant::now();
        if via_value {
            registry_domain::stored::decode_via_value(&e.content)?;
        } else {
            registry_domain::stored::decode(&e.content)?;
        }
        decode_s += t.elapsed().as_secs_f64();
        n += 1;
        bytes += e.content.len();
        progress.tick(n);
        t = Instant::now();
    }
    println!(
        "{}",
        json!({"mode": "baseline", "decoder": if via_value { "value" } else { "typed" }, "events": n, "bytes": bytes, "open_s": open_s, "read_s": read_s, "decode_s": decode_s,
               "load_s": open_s + read_s + decode_s})
    );
    Ok(())
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux; clock
/// ticks of 1/100 s). `None` elsewhere.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn load(args: Vec<String>) -> Res<()> {
    let url = need(&args, "--url")?;
    let token = arg(&args, "--token");
    let concurrency: usize = need(&args, "--concurrency")?.parse()?;
    let requests: usize = need(&args, "--requests")?.parse()?;
    let query = arg(&args, "--query").map(|q| format!("?{q}")).unwrap_or_default();
    let path = args.last().cloned().ok_or("PATH is required")?;
    let ids: Vec<String> = match arg(&args, "--ids") {
        Some(f) => std::fs::read_to_string(&f)?.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect(),
        None => Vec::new(),
    };
    if path.contains("{id}") && ids.is_empty() {
        return Err("PATH has {id}: give --ids FILE".into());
    }
    let urls: Arc<Vec<String>> = Arc::new(if path.contains("{id}") {
        ids.iter().map(|id| format!("{url}{}{query}", path.replace("{id}", id))).collect()
    } else {
        vec![format!("{url}{path}{query}")]
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    // Warm-up: one request per connection-to-be, so the run measures requests, not TCP set-up.
    let warm: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, u, token) = (client.clone(), urls[i % urls.len()].clone(), token.clone());
            tokio::spawn(async move {
                let mut r = client.get(u);
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                let _ = r.send().await.map(|x| x.bytes());
            })
        })
        .collect();
    for w in warm {
        let _ = w.await;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let cpu_at_start = own_cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, urls, token, next, done) = (client.clone(), urls.clone(), token.clone(), next.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let mut r = client.get(&urls[i % urls.len()]);
                if let Some(t) = &token {
                    r = r.bearer_auth(t);
                }
                let t = Instant::now();
                match r.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.bytes().await {
                            Ok(_) => {
                                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                                *statuses.entry(status).or_default() += 1;
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    Err(_) => errors += 1,
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (lat, statuses, errors)
        }));
    }
    let ticker = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut progress = Progress::new("requests", requests);
            loop {
                let d = done.load(Ordering::Relaxed);
                progress.tick(d);
                if d >= requests {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut lat = Vec::with_capacity(requests);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors = 0;
    for w in workers {
        let (l, s, e) = w.await?;
        lat.extend(l);
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_s = own_cpu_seconds().map(|c| c - cpu_at_start);
    let _ = ticker.await;
    lat.sort_by(f64::total_cmp);
    let mean = if lat.is_empty() { f64::NAN } else { lat.iter().sum::<f64>() / lat.len() as f64 };
    println!(
        "{}",
        json!({
            "mode": "load", "path": path, "concurrency": concurrency, "requests": requests, "errors": errors,
            "statuses": statuses, "seconds": elapsed, "requests_per_s": lat.len() as f64 / elapsed,
            "mean_ms": mean, "p50_ms": percentile(&lat, 0.50), "p90_ms": percentile(&lat, 0.90),
            "p99_ms": percentile(&lat, 0.99), "max_ms": lat.last().copied().unwrap_or(f64::NAN),
            "generator_cpu_s": cpu_s,
        })
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ids") => ids(&args),
        Some("baseline") => baseline(&args),
        Some("load") => {
            // The load generator: two worker threads (the machine's cores are shared with the server).
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(load(args))
        }
        _ => Err("usage: bench_api ids|phases|load … (see the file's header)".into()),
    }
}
