//! Measurement helper of `scripts/bench` (the whole-pipeline benchmark). Its modes:
//!
//! - `raw --nats URL --file F`: the baseline. The same NDJSON payloads published to EVENTS
//!   (`Nats-Msg-Id` = event_id, 256 publishes in flight awaiting their acks, as `registry publish`
//!   does) while a durable pull consumer reads them and acknowledges each explicitly, as the
//!   services do; done when the server's consumer info shows nothing pending or unacked (the
//!   same condition `wait` uses). Prints events/s from the first publish to then.
//! - `relay --nats URL --file F`: the pipeline's bus work without the services' own work. The
//!   same publishes to EVENTS as `raw`; a relay (its own connection, like `registry ingest`)
//!   takes batches of up to 1,000 from a durable consumer on EVENTS, publishes each message to
//!   ACCEPTED (`Nats-Msg-Id`, the received-at header, 256 in flight, acks awaited) and then
//!   acknowledges the batch; a third connection (like `registry project`) reads ACCEPTED and
//!   acknowledges each message. No validation, store or fold: an upper bound for the
//!   end-to-end rate of this topology on this machine. Done when both consumers are drained.
//! - `wait --nats URL --events N`: polls (every 10 ms) until EVENTS holds N messages and the
//!   `ingest` (EVENTS) and `projector` (ACCEPTED) consumers have nothing pending or unacked,
//!   i.e. until every event's labels are durable in the projector's store. Prints the time.
//!   With `--stage ingest`: only until EVENTS holds N messages and `ingest` is drained (the
//!   projector not running); with `--stage projector`: only until `projector` exists and is
//!   drained (ACCEPTED filled beforehand). For the bench's `stages` phase.
//! - `streams --nats URL`: creates the streams as the services do at start (for a feed published
//!   before any service runs).
//! - `latency --nats URL --file F --rate R`: publishes F at a steady R events/s and listens to
//!   `registry.alerts.>`; for each alert whose completing event (`event_id`) was published in
//!   this run, latency = alert received − that event's publish sent. Prints p50/p99/max.
//!
//! Output: one JSON object on stdout. Only the bus crate is used (no direct async-nats dep).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use registry_bus::BusConfig;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn required(name: &str) -> String {
    arg(name).unwrap_or_else(|| {
        eprintln!("bench_bus: {name} is required");
        std::process::exit(2)
    })
}

struct Line {
    subject: String,
    event_id: String,
    bytes: Vec<u8>,
}

fn read_lines(path: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(path).expect("read the events file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let subject = registry_bus::subjects::events_subject(
                v["site_id"].as_str().expect("site_id"),
                v["event_type"].as_str().expect("event_type"),
            )
            .expect("subject");
            Line { subject, event_id: v["event_id"].as_str().expect("event_id").to_owned(), bytes: l.as_bytes().to_vec() }
        })
        .collect()
}

fn bus_config(url: &str, name: &str) -> BusConfig {
    let mut cfg = BusConfig::with_url(url);
    cfg.client_name = name.to_owned();
    cfg
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let url = required("--nats");
    match mode.as_str() {
        "raw" => raw(&url, &required("--file")).await,
        "relay" => relay(&url, &required("--file")).await,
        "streams" => {
            connect_with_streams(&url, "bench-streams").await;
        }
        "wait" => wait(&url, required("--events").parse().expect("--events N"), arg("--stage")).await,
        "latency" => {
            let rate: f64 = arg("--rate").map(|r| r.parse().expect("--rate")).unwrap_or(1000.0);
            latency(&url, &required("--file"), rate).await
        }
        other => {
            eprintln!("bench_bus: unknown mode {other:?} (raw | relay | streams | wait | latency)");
            std::process::exit(2)
        }
    }
}

/// A JetStream context on its own connection named `name`, with the streams set up as the
/// services set them up at start (the context keeps the connection open).
async fn connect_with_streams(url: &str, name: &str) -> registry_bus::JetStreamContext {
    let cfg = bus_config(url, name);
    let (_client, js) = registry_bus::connect_jetstream(&cfg).await.expect("connect");
    registry_bus::ensure_streams(&js, &cfg).await.expect("streams");
    js
}

/// Publishes every line to EVENTS as `registry publish` does (`Nats-Msg-Id`, 256 in flight, acks
/// awaited); panics unless every publish was acknowledged.
async fn publish_all(js: &registry_bus::JetStreamContext, lines: Vec<Line>) {
    let published: Vec<_> = futures::stream::iter(lines.into_iter().map(|l| {
        let js = js.clone();
        async move { registry_bus::publish_with_id(&js, &l.subject, &l.event_id, None, l.bytes.into()).await }
    }))
    .buffer_unordered(256)
    .collect()
    .await;
    assert!(published.iter().all(Result::is_ok), "every publish acknowledged");
}

/// Reads `n` messages of `consumer` and acknowledges each, as the services do (one ack message
/// each, not awaited by the server).
async fn read_and_ack(consumer: registry_bus::PullConsumer, n: usize) {
    let mut messages = consumer.stream().max_messages_per_batch(1000).messages().await.expect("messages");
    for _ in 0..n {
        let m = messages.next().await.expect("stream open").expect("message");
        m.ack().await.expect("ack");
    }
}

async fn raw(url: &str, file: &str) {
    let lines = read_lines(file);
    let n = lines.len();
    let js = connect_with_streams(url, "bench-raw").await;
    let consumer = registry_bus::durable_pull_consumer(
        &js,
        registry_bus::EVENTS,
        "raw",
        "registry.events.>",
        Duration::from_secs(30),
        -1,
    )
    .await
    .expect("consumer");
    let started = Instant::now();
    let js_reader = js.clone();
    let reader = tokio::spawn(async move {
        read_and_ack(consumer, n).await;
        // Consumed = the server has every ack, the condition the pipeline is timed to as well.
        drained(&js_reader, registry_bus::EVENTS, "raw").await;
    });
    publish_all(&js, lines).await;
    let publish_s = started.elapsed().as_secs_f64();
    reader.await.expect("reader");
    let total_s = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"mode": "raw", "events": n, "publish_s": publish_s, "total_s": total_s, "events_per_s": n as f64 / total_s})
    );
}

/// Polls until `consumer` on `stream` has nothing pending or unacknowledged.
async fn drained(js: &registry_bus::JetStreamContext, stream: &str, consumer: &str) {
    loop {
        let s = js.get_stream(stream).await.expect("stream");
        let info = s.consumer_info(consumer).await.expect("consumer info");
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn relay(url: &str, file: &str) {
    let lines = read_lines(file);
    let n = lines.len();
    let js = connect_with_streams(url, "bench-relay-feeder").await;
    let (_c1, js_in) = registry_bus::connect_jetstream(&bus_config(url, "bench-relay-ingest")).await.expect("connect");
    let (_c2, js_out) = registry_bus::connect_jetstream(&bus_config(url, "bench-relay-projector")).await.expect("connect");
    let consumer = |js: registry_bus::JetStreamContext, stream: &'static str, name: &'static str, filter: &'static str| async move {
        registry_bus::durable_pull_consumer_with(&js, stream, name, filter, Duration::from_secs(30), -1, 5000)
            .await
            .expect("consumer")
    };
    let on_events = consumer(js_in.clone(), registry_bus::EVENTS, "relay-in", "registry.events.>").await;
    let on_accepted = consumer(js_out.clone(), registry_bus::ACCEPTED, "relay-out", "registry.accepted.>").await;
    let started = Instant::now();
    let partitions = std::num::NonZeroU32::MIN;
    let relay = tokio::spawn(async move {
        let mut messages = on_events.stream().max_messages_per_batch(1000).messages().await.expect("messages");
        let mut seen = 0usize;
        while seen < n {
            let batch = registry_bus::next_batch(&mut messages, 1000).await.expect("stream open");
            seen += batch.len();
            let owned: Vec<(String, _)> = batch
                .iter()
                .map(|m| {
                    let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned());
                    (id.unwrap_or_default(), m.payload.clone())
                })
                .collect();
            let results: Vec<_> = futures::stream::iter(owned.into_iter().map(|(id, payload)| {
                let js = js_in.clone();
                async move {
                    let subject = registry_bus::subjects::accepted_subject_for_patient(&id, partitions);
                    let mut headers = registry_bus::HeaderMap::new();
                    headers.insert(registry_bus::RECEIVED_AT_HEADER, "0");
                    registry_bus::publish_with_id(&js, &subject, &id, Some(headers), payload).await
                }
            }))
            .buffer_unordered(256)
            .collect()
            .await;
            assert!(results.iter().all(Result::is_ok), "every relay publish acknowledged");
            for m in &batch {
                m.ack().await.expect("ack");
            }
        }
    });
    let sink = tokio::spawn(read_and_ack(on_accepted, n));
    publish_all(&js, lines).await;
    let publish_s = started.elapsed().as_secs_f64();
    relay.await.expect("relay");
    sink.await.expect("sink");
    drained(&js, registry_bus::EVENTS, "relay-in").await;
    drained(&js, registry_bus::ACCEPTED, "relay-out").await;
    let total_s = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"mode": "relay", "events": n, "publish_s": publish_s, "total_s": total_s, "events_per_s": n as f64 / total_s})
    );
}

async fn wait(url: &str, events: u64, stage: Option<String>) {
    let cfg = bus_config(url, "bench-wait");
    let (_client, js) = registry_bus::connect_jetstream(&cfg).await.expect("connect");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3600);
    loop {
        let done = async {
            let ingest = async {
                let mut ev = js.get_stream("EVENTS").await.ok()?;
                if ev.info().await.ok()?.state.messages < events {
                    return Some(false);
                }
                let i = ev.consumer_info("ingest").await.ok()?;
                Some(i.num_pending == 0 && i.num_ack_pending == 0)
            };
            let projector = async {
                let acc = js.get_stream("ACCEPTED").await.ok()?;
                let p = acc.consumer_info("projector").await.ok()?;
                Some(p.num_pending == 0 && p.num_ack_pending == 0)
            };
            match stage.as_deref() {
                Some("ingest") => ingest.await,
                Some("projector") => projector.await,
                None => Some(ingest.await? && projector.await?),
                Some(other) => panic!("--stage {other:?}: expected ingest or projector"),
            }
        }
        .await;
        if done == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "pipeline did not drain within an hour");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("{}", serde_json::json!({"mode": "wait", "events": events, "stage": stage, "waited_s": started.elapsed().as_secs_f64()}));
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn latency(url: &str, file: &str, rate: f64) {
    let lines = read_lines(file);
    let n = lines.len();
    let cfg = bus_config(url, "bench-latency");
    let (client, js) = registry_bus::connect_jetstream(&cfg).await.expect("connect");
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut alerts = client.subscribe("registry.alerts.>").await.expect("subscribe");
    client.flush().await.expect("flush");
    let received: Arc<std::sync::Mutex<Vec<(String, Instant)>>> = Arc::default();
    let rec = received.clone();
    let listener = tokio::spawn(async move {
        while let Some(m) = alerts.next().await {
            let at = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if let Some(id) = v["event_id"].as_str() {
                rec.lock().expect("lock").push((id.to_owned(), at));
            }
        }
    });
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::with_capacity(n);
    for (i, l) in lines.into_iter().enumerate() {
        let due = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        sent.lock().expect("lock").insert(l.event_id.clone(), Instant::now());
        let js = js.clone();
        tasks.push(tokio::spawn(async move {
            registry_bus::publish_with_id(&js, &l.subject, &l.event_id, None, l.bytes.into()).await.is_ok()
        }));
    }
    let publish_s = started.elapsed().as_secs_f64();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    // Let the tail of the pipeline finish: the alerts of the last events.
    let quiet = Instant::now();
    let mut last_len = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let len = received.lock().expect("lock").len();
        if (len == last_len && quiet.elapsed() > Duration::from_secs(2)) || quiet.elapsed() > Duration::from_secs(60) {
            break;
        }
        last_len = len;
    }
    listener.abort();
    let sent = sent.lock().expect("lock");
    let mut lat: Vec<f64> = received
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.duration_since(*s).as_secs_f64() * 1000.0))
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "mode": "latency", "events": n, "published_ok": ok, "rate_target": rate,
            "rate_achieved": n as f64 / publish_s, "alerts": lat.len(),
            "p50_ms": percentile(&lat, 50.0), "p99_ms": percentile(&lat, 99.0),
            "max_ms": lat.last().copied().unwrap_or(f64::NAN),
        })
    );
}
