//! Crash safety of the live pipeline: `kill -9` of ingest or of the projector at 20 seeded random
//! moments while 50,000 events stream through a real nats-server, each restarted at once. At the
//! end the projector's labels equal, byte for byte, those of `registry import` of the same file;
//! the ingest store holds every event exactly once; every alert is on ALERTS exactly once.
//!
//! The kill moments are positions in the stream (a consumer's ack floor passing a seeded random
//! sequence, plus a seeded random delay of up to 400 ms to land anywhere inside a batch), so the
//! 20 kills all fall inside the run however fast or slow the machine is.

mod bus_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bus_support::*;
use registry_testsupport::NatsServer;

const EVENTS: usize = 50_000;
const KILLS: usize = 20;

#[test]
fn kill_9_of_ingest_or_projector_at_20_random_moments_loses_nothing_and_duplicates_nothing() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.ndjson");
    let lines = synth_lines(4_500, 2019, Some(EVENTS));
    let ids: BTreeSet<String> = lines.iter().map(|l| event_id(l)).collect();
    assert_eq!(ids.len(), EVENTS, "synth event ids are unique");
    write_lines(&file, &lines);
    drop(lines);

    let (ingest_dir, projector_dir, import_dir) =
        (tmp.path().join("ingest"), tmp.path().join("projector"), tmp.path().join("import"));
    // The reference, computed alongside.
    let reference = import(&file, &import_dir);

    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    let bus = Bus::connect(&url);
    let feeder = publisher(&file, &url);

    let mut rng = Rng(0x6b11_2019_dead_beef);
    let mut kills: Vec<(u64, bool)> =
        (0..KILLS).map(|_| (500 + rng.below(EVENTS as u64 - 1_500), rng.below(2) == 0)).collect();
    kills.sort_unstable();
    let mut killed = [0u32; 2];
    for (at, kill_ingest) in kills {
        let (stream, consumer) = if kill_ingest { ("EVENTS", "ingest") } else { ("ACCEPTED", "projector") };
        poll_until(
            &format!("{consumer} to pass stream seq {at}"),
            Duration::from_secs(240),
            || {
                ingest.assert_running();
                projector.assert_running();
                bus.consumer(stream, consumer)
            },
            |state| state.filter(|s| s.ack_floor_stream_seq >= at).map(|_| ()),
        );
        // Not a wait for correctness: where inside the next batch the kill lands.
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        let service = if kill_ingest { &mut ingest } else { &mut projector };
        service.kill9();
        service.start();
        killed[usize::from(!kill_ingest)] += 1;
    }
    eprintln!("killed ingest {} times, projector {} times, in {:?}", killed[0], killed[1], started.elapsed());

    let summary = publisher_summary(feeder, Duration::from_secs(300));
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(
        summary["published"].as_u64().unwrap_or(0) + summary["duplicate"].as_u64().unwrap_or(0),
        EVENTS as u64,
        "{summary}"
    );
    wait_pipeline_drained(&bus, EVENTS as u64, Duration::from_secs(300), &mut [&mut ingest, &mut projector]);
    eprintln!(
        "drained after {:?}; redelivered: ingest {:?}, projector {:?}",
        started.elapsed(),
        bus.consumer("EVENTS", "ingest").map(|c| c.num_redelivered),
        bus.consumer("ACCEPTED", "projector").map(|c| c.num_redelivered)
    );
    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}; log:\n{}", service.name, service.log_tail());
    }
    wait_success(reference, "registry import", Duration::from_secs(300));
    check_exactly_once(&bus, &ingest_dir, &projector_dir, &import_dir, &ids);
    eprintln!("done in {:?}", started.elapsed());
}
