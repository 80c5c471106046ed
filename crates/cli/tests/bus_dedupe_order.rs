//! Idempotency beyond the server's duplicate window, and order freedom, on the live bus.
//!
//! EVENTS is set up with a 1-second duplicate window before the services start. The cohort is
//! published in a shuffled order; then, once the window has passed (proved by the server storing
//! a repeat instead of answering `duplicate`), a fifth of the events is published again with the
//! same `Nats-Msg-Id`, and a twentieth once more under a different message id (a feeder that
//! does not reuse ids). The server stores all of them; the ingest store's event_id index must
//! absorb every repeat, and the labels must equal those of `registry import` of the unshuffled file.

mod bus_support;

use std::collections::BTreeSet;
use std::time::Duration;

use bus_support::*;
use registry_bus::BusConfig;
use registry_testsupport::NatsServer;

#[test]
fn repeats_outside_the_duplicate_window_are_stored_once_and_shuffled_arrival_gives_the_import_labels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines = synth_lines(300, 77, None);
    let n = lines.len();
    assert!(n > 2_000, "a cohort of some size ({n} events)");
    let ids: BTreeSet<String> = lines.iter().map(|l| event_id(l)).collect();
    assert_eq!(ids.len(), n);
    let ordered = tmp.path().join("ordered.ndjson");
    write_lines(&ordered, &lines);
    let import_dir = tmp.path().join("import");
    let reference = import(&ordered, &import_dir);

    let mut rng = Rng(0x0dd_0de2_5eed);
    let mut shuffled = lines.clone();
    rng.shuffle(&mut shuffled);
    assert_ne!(shuffled, lines);
    let shuffled_file = tmp.path().join("shuffled.ndjson");
    write_lines(&shuffled_file, &shuffled);

    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    // Streams with a 1 s duplicate window (the services' start-up later widens it again; the
    // repeats are in the stream by then).
    ensure_streams(&BusConfig { duplicate_window: Duration::from_secs(1), ..BusConfig::with_url(&url) });
    let bus = Bus::connect(&url);
    let summary = publisher_summary(publisher(&shuffled_file, &url), Duration::from_secs(120));
    assert_eq!(summary["published"].as_u64(), Some(n as u64), "{summary}");

    // A fifth of the events again with the same Nats-Msg-Id, once the server no longer knows
    // the id: a publish answered `duplicate` was inside the window (not stored), so it is polled
    // until the server stores it.
    let mut repeated = 0u64;
    let mut renamed = 0u64;
    for line in &shuffled {
        let id = event_id(line);
        let subject = subject_of(line);
        let roll = rng.below(100);
        if roll < 20 {
            poll_until(
                "a repeat to fall outside the 1 s duplicate window",
                Duration::from_secs(30),
                || bus.publish(&subject, &id, line.as_bytes()),
                |r| (*r == Ok(false)).then_some(()),
            );
            repeated += 1;
        }
        if roll >= 95 {
            let dup = bus.publish(&subject, &format!("{id}-resent"), line.as_bytes()).expect("renamed repeat published");
            assert!(!dup, "a new message id is never a server-side duplicate");
            renamed += 1;
        }
    }
    assert!(repeated > 0 && renamed > 0);
    let in_stream = n as u64 + repeated + renamed;
    assert_eq!(bus.stream_len("EVENTS"), Some(in_stream), "the server stored every repeat");

    let (ingest_dir, projector_dir) = (tmp.path().join("ingest"), tmp.path().join("projector"));
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    wait_pipeline_drained(&bus, in_stream, Duration::from_secs(300), &mut [&mut ingest, &mut projector]);
    assert_eq!(bus.stream_len("ACCEPTED"), Some(n as u64), "each event accepted once");
    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}", service.name);
    }
    wait_success(reference, "registry import", Duration::from_secs(300));
    check_exactly_once(&bus, &ingest_dir, &projector_dir, &import_dir, &ids);
    let store = registry_store::Store::open(&ingest_dir.join("store")).expect("ingest store");
    let reasons = store.rejection_count_by_reason().expect("rejections");
    assert!(!reasons.contains_key("event_id_conflict"), "a repeat with the same content is a duplicate: {reasons:?}");
}

fn subject_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    registry_bus::subjects::events_subject(
        v["site_id"].as_str().expect("site_id"),
        v["event_type"].as_str().expect("event_type"),
    )
    .expect("valid subject")
}
