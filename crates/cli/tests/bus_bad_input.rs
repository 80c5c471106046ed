//! What the live ingest does with input it must refuse: messages from a site that is not allowed
//! to speak for another site (deploy/nats-sites.conf), envelopes whose site_id is not the site of
//! their subject, malformed, oversized and schema-violating messages. Each is refused with a
//! reason — on `registry.rejected.<site>` and in the ingest store — and the stream carries on:
//! the valid events after them are projected.

mod bus_support;

use std::collections::BTreeMap;
use std::time::Duration;

use bus_support::*;
use registry_store::Store;
use registry_testsupport::NatsServer;

fn field(line: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {line}")).to_owned()
}

fn subject(site: &str, event_type: &str) -> String {
    registry_bus::subjects::events_subject(site, event_type).expect("valid subject")
}

/// Rejection notices on REJECTED: (subject, reason) in stream order.
fn notices(bus: &Bus) -> Vec<(String, String)> {
    bus.read_all("REJECTED")
        .into_iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("notice is JSON");
            (m.subject, v["reason"].as_str().expect("reason").to_owned())
        })
        .collect()
}

fn stored_rejections(ingest_dir: &std::path::Path) -> Vec<(String, String)> {
    let store = Store::open(&ingest_dir.join("store")).expect("ingest store");
    store.rejections().map(|r| r.expect("rejection")).map(|r| (r.source, r.reason)).collect()
}

#[test]
fn a_site_cannot_publish_for_another_site_and_a_foreign_site_id_is_rejected_site_mismatch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nats = start_sites_server();
    let url = nats.url();
    let admin = Bus::connect_with(as_user(&url, "admin")).expect("admin connects");
    let (ingest_dir, projector_dir) = (tmp.path().join("ingest"), tmp.path().join("projector"));
    let (mut ingest, mut projector) = services_as_users(&url, tmp.path());
    ingest.start();
    projector.start();

    // One fuscc patient's events, and one pumch event.
    let lines = synth_lines(60, 11, None);
    let fuscc_patient = lines.iter().find(|l| field(l, "site_id") == "fuscc").map(|l| field(l, "patient_id")).expect("a fuscc patient");
    let fuscc: Vec<&String> = lines.iter().filter(|l| field(l, "patient_id") == fuscc_patient).collect();
    let pumch = lines.iter().find(|l| field(l, "site_id") == "pumch").expect("a pumch event");

    poll_until("the EVENTS stream", Duration::from_secs(60), || admin.stream_len("EVENTS"), |n| n.map(|_| ()));
    let site = Bus::connect_with(as_user(&url, "fuscc")).expect("fuscc connects");
    // Its own events: acknowledged.
    for line in &fuscc {
        let dup = site
            .publish(&subject("fuscc", &field(line, "event_type")), &field(line, "event_id"), line.as_bytes())
            .expect("fuscc publishes its own event");
        assert!(!dup);
    }
    // For another site: a permissions violation, never acknowledged, not stored.
    let before = admin.stream_len("EVENTS").expect("EVENTS");
    let err = site
        .publish(&subject("pumch", &field(pumch, "event_type")), &field(pumch, "event_id"), pumch.as_bytes())
        .expect_err("fuscc may not publish for pumch");
    assert!(err.contains("not acknowledged"), "{err}");
    assert_eq!(admin.stream_len("EVENTS"), Some(before), "nothing stored for pumch");
    // The server says why.
    poll_until(
        "the violation in the server log",
        Duration::from_secs(10),
        || nats.log(),
        |log| {
            log.lines()
                .any(|l| l.contains("user:fuscc") && l.contains("Publish Violation") && l.contains("\"registry.events.pumch."))
                .then_some(())
        },
    );

    // On its own subject but claiming to be pumch: accepted by the server, rejected by ingest.
    let mismatch_subject = subject("fuscc", &field(pumch, "event_type"));
    site.publish(&mismatch_subject, &field(pumch, "event_id"), pumch.as_bytes()).expect("fuscc may publish on its subjects");
    let total = fuscc.len() as u64 + 1;
    wait_pipeline_drained(&admin, total, Duration::from_secs(120), &mut [&mut ingest, &mut projector]);

    let notes = notices(&admin);
    assert_eq!(notes, vec![("registry.rejected.fuscc".to_owned(), "site_mismatch".to_owned())]);
    assert_eq!(admin.stream_len("ACCEPTED"), Some(fuscc.len() as u64));
    for service in [&mut ingest, &mut projector] {
        assert!(service.sigterm(Duration::from_secs(30)).success(), "{} stops cleanly", service.name);
    }
    assert_eq!(stored_rejections(&ingest_dir), vec![(mismatch_subject, "site_mismatch".to_owned())]);
    let labels = String::from_utf8(labels(&projector_dir)).expect("UTF-8");
    assert_eq!(labels.lines().count(), 1, "the fuscc patient is projected: {labels}");
    assert!(labels.contains(&fuscc_patient));
}

#[test]
fn malformed_oversized_and_schema_violating_messages_are_rejected_with_a_reason_and_the_stream_carries_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines = synth_lines(40, 12, None);
    let valid: Vec<String> = lines.iter().filter(|l| field(l, "site_id") == "fuscc").cloned().collect();
    assert!(valid.len() > 50, "enough fuscc events");
    let valid_file = tmp.path().join("valid.ndjson");
    write_lines(&valid_file, &valid);
    let import_dir = tmp.path().join("import");
    let reference = import(&valid_file, &import_dir);

    let sample = &valid[0];
    let mut with_stray: serde_json::Value = serde_json::from_str(sample).expect("JSON");
    with_stray["payload"]["hospital_record_number"] = serde_json::json!("MRN-12345");
    let mut bad_type: serde_json::Value = serde_json::from_str(sample).expect("JSON");
    bad_type["event_type"] = serde_json::json!("patient.teleported");
    bad_type["event_id"] = serde_json::json!("0b7d3c9e-1f00-4c1e-9d7a-000000000001");
    let mut big: serde_json::Value = serde_json::from_str(sample).expect("JSON");
    big["event_id"] = serde_json::json!("0b7d3c9e-1f00-4c1e-9d7a-000000000002");
    big["payload"]["note"] = serde_json::json!("x".repeat(300 * 1024));
    let big = serde_json::to_vec(&big).expect("encode");
    assert!(big.len() > 256 * 1024 && big.len() < 1024 * 1024, "over the event limit, under the server's max payload");

    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed JSON", b"{\"event_id\": \"oops\", ".to_vec(), "malformed"),
        ("invalid UTF-8", b"{\"event_id\": \"\xff\xfe\"}".to_vec(), "malformed"),
        ("oversized", big, "too_large"),
        ("stray field", serde_json::to_vec(&with_stray).expect("encode"), "schema"),
        ("unknown type", serde_json::to_vec(&bad_type).expect("encode"), "unknown_event_type"),
    ];

    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let (ingest_dir, projector_dir) = (tmp.path().join("ingest"), tmp.path().join("projector"));
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    let bus = Bus::connect(&url);
    // The services set the streams up at start; publish once EVENTS is there.
    poll_until("the EVENTS stream", Duration::from_secs(60), || bus.stream_len("EVENTS"), |n| n.map(|_| ()));
    let enrolled = subject("fuscc", "patient.enrolled");
    for (i, (what, bytes, _)) in bad.iter().enumerate() {
        bus.publish(&enrolled, &format!("bad-{i}"), bytes).unwrap_or_else(|e| panic!("publish {what}: {e}"));
    }
    // The valid events after them.
    let summary = publisher_summary(publisher(&valid_file, &url), Duration::from_secs(120));
    assert_eq!(summary["failed"], 0, "{summary}");
    let total = bad.len() as u64 + valid.len() as u64;
    wait_pipeline_drained(&bus, total, Duration::from_secs(120), &mut [&mut ingest, &mut projector]);
    assert_eq!(bus.stream_len("ACCEPTED"), Some(valid.len() as u64), "every valid event accepted");

    let want: BTreeMap<String, usize> = bad.iter().fold(BTreeMap::new(), |mut m, (_, _, r)| {
        *m.entry((*r).to_owned()).or_default() += 1;
        m
    });
    let count = |pairs: &[(String, String)]| -> BTreeMap<String, usize> {
        pairs.iter().fold(BTreeMap::new(), |mut m, (_, r)| {
            *m.entry(r.clone()).or_default() += 1;
            m
        })
    };
    let notes = notices(&bus);
    assert!(notes.iter().all(|(s, _)| s == "registry.rejected.fuscc"), "{notes:?}");
    assert_eq!(count(&notes), want, "a notice with its reason for each bad message");
    for service in [&mut ingest, &mut projector] {
        assert!(service.sigterm(Duration::from_secs(30)).success(), "{} stops cleanly", service.name);
    }
    let stored = stored_rejections(&ingest_dir);
    assert_eq!(count(&stored), want, "every bad message kept with its reason");
    assert!(stored.iter().all(|(source, _)| source == &enrolled), "{stored:?}");
    let store = Store::open(&ingest_dir.join("store")).expect("ingest store");
    let big_kept = store.rejections().map(|r| r.expect("rejection")).find(|r| r.reason == "too_large").expect("too_large kept");
    assert_eq!(big_kept.raw.len(), bad[2].1.len(), "the raw bytes are kept whole");
    drop(store);

    wait_success(reference, "registry import", Duration::from_secs(120));
    assert_same_labels(&labels(&projector_dir), &labels(&import_dir));
}
