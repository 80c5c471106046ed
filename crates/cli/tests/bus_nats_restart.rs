//! The server goes away mid-stream: nats-server is killed (SIGKILL, `NatsServer::stop`) twice —
//! once while the feeder is still publishing, once while the projector is catching up — and
//! restarted on the same port and store. The feeder, ingest and the projector reconnect on their
//! own and finish with nothing lost and nothing doubled (the same checks as the kill -9 test).
//! A second test keeps the server away for longer than a publish retries (60 s).

mod bus_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bus_support::*;
use registry_testsupport::NatsServer;

const EVENTS: usize = 20_000;

#[test]
fn nats_server_killed_and_restarted_mid_stream_services_reconnect_and_lose_nothing() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.ndjson");
    let lines = synth_lines(2_000, 2020, Some(EVENTS));
    let ids: BTreeSet<String> = lines.iter().map(|l| event_id(l)).collect();
    assert_eq!(ids.len(), EVENTS);
    write_lines(&file, &lines);
    drop(lines);
    let (ingest_dir, projector_dir, import_dir) =
        (tmp.path().join("ingest"), tmp.path().join("projector"), tmp.path().join("import"));
    let reference = import(&file, &import_dir);

    let mut nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    let bus = Bus::connect(&url);
    let feeder = publisher(&file, &url);

    // Outage 1: while the feeder publishes (a fifth of the events are in EVENTS).
    poll_until(
        "a fifth of the events in EVENTS",
        Duration::from_secs(120),
        || bus.stream_len("EVENTS"),
        |n| n.filter(|n| *n >= EVENTS as u64 / 5).map(|_| ()),
    );
    nats.stop();
    // The outage lasts a while: the services see a dead connection, not a blip.
    std::thread::sleep(Duration::from_secs(2));
    nats.restart().expect("nats-server restarts");
    eprintln!("outage 1 over at {:?}", started.elapsed());

    // Outage 2: while the projector works through ACCEPTED (half of it acknowledged).
    poll_until(
        "the projector past half of the events",
        Duration::from_secs(240),
        || {
            ingest.assert_running();
            projector.assert_running();
            bus.consumer("ACCEPTED", "projector")
        },
        |c| c.filter(|c| c.ack_floor_stream_seq >= EVENTS as u64 / 2).map(|_| ()),
    );
    nats.stop();
    std::thread::sleep(Duration::from_secs(2));
    nats.restart().expect("nats-server restarts");
    eprintln!("outage 2 over at {:?}", started.elapsed());

    let summary = publisher_summary(feeder, Duration::from_secs(300));
    assert_eq!(summary["failed"], 0, "{summary}");
    wait_pipeline_drained(&bus, EVENTS as u64, Duration::from_secs(300), &mut [&mut ingest, &mut projector]);
    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}; log:\n{}", service.name, service.log_tail());
        assert_eq!(service.starts, 1, "{} was never restarted: it reconnected on its own", service.name);
    }
    wait_success(reference, "registry import", Duration::from_secs(300));
    check_exactly_once(&bus, &ingest_dir, &projector_dir, &import_dir, &ids);
    eprintln!("done in {:?}", started.elapsed());
}

/// Longer than one publish's retries (8 attempts, about 50 s with 5 s ack timeouts): the
/// services must neither exit nor lose anything; they keep the batch unacknowledged and the
/// outboxes full, and carry on when the server is back.
const LONG_OUTAGE: Duration = Duration::from_secs(60);

#[test]
fn a_nats_outage_longer_than_the_publish_retries_is_ridden_out_by_ingest_and_projector() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.ndjson");
    let lines = synth_lines(1_000, 2021, Some(10_000));
    let ids: BTreeSet<String> = lines.iter().map(|l| event_id(l)).collect();
    write_lines(&file, &lines);
    drop(lines);
    let (ingest_dir, projector_dir, import_dir) =
        (tmp.path().join("ingest"), tmp.path().join("projector"), tmp.path().join("import"));
    let reference = import(&file, &import_dir);

    let mut nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let bus = Bus::connect(&url);
    // Everything is in EVENTS before the services start, so the outage hits them mid-work and
    // no feeder is involved (a feeder's own publishes would give up after their retries).
    ensure_streams(&registry_bus::BusConfig::with_url(&url));
    let summary = publisher_summary(publisher(&file, &url), Duration::from_secs(120));
    assert_eq!(summary["published"].as_u64(), Some(ids.len() as u64), "{summary}");
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    poll_until(
        "the projector to get going",
        Duration::from_secs(120),
        || bus.consumer("ACCEPTED", "projector"),
        |c| c.filter(|c| c.ack_floor_stream_seq >= 1_000).map(|_| ()),
    );
    nats.stop();
    std::thread::sleep(LONG_OUTAGE);
    ingest.assert_running();
    projector.assert_running();
    nats.restart().expect("nats-server restarts");
    eprintln!("long outage over at {:?}", started.elapsed());

    wait_pipeline_drained(&bus, ids.len() as u64, Duration::from_secs(240), &mut [&mut ingest, &mut projector]);
    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}; log:\n{}", service.name, service.log_tail());
        assert_eq!(service.starts, 1, "{} kept running through the outage", service.name);
    }
    // The outage really outlasted a publish's retries while work was in flight.
    let gave_up = [&ingest, &projector]
        .iter()
        .filter(|s| s.log_text().contains("bus unavailable; batch left unacknowledged"))
        .count();
    assert!(gave_up > 0, "a service ran out of publish retries during the outage and carried on");
    wait_success(reference, "registry import", Duration::from_secs(300));
    check_exactly_once(&bus, &ingest_dir, &projector_dir, &import_dir, &ids);
    eprintln!("done in {:?}", started.elapsed());
}
