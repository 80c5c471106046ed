//! A store restored from a backup catches up from EVENTS (issue 4: "EVENTS keeps messages long
//! enough that a store restored from backup can catch up from it"; docs/bus.md, "A store
//! restored from a backup").
//!
//! The ingest's and the projector's data directories are copied while the services are stopped
//! (the backup); more events arrive and are acknowledged; then the copies are put back and the
//! services started on them. Their durable consumers had acknowledged messages the restored
//! stores do not hold, so each reads its stream again from the first message: nothing
//! acknowledged is lost, the events a store held come again as duplicates, a rejected message
//! the ingest held is not kept twice, and the labels equal an import of the same events.

mod bus_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bus_support::*;
use registry_store::Store;
use registry_testsupport::NatsServer;

fn bad_line(id: &str) -> String {
    serde_json::json!({
        "event_id": id, "event_type": "followup.recorded", "schema_version": 1,
        "patient_id": "P999", "site_id": "fuscc", "occurred_on": "2016-05-03",
        "recorded_at": "2016-05-04T09:12:00Z", "supersedes": null, "payload": {"status": "dancing"}
    })
    .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("run cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}

fn wait_ingest_drained(bus: &Bus, messages: u64, ingest: &mut Service) {
    poll_until(
        "the ingest consumer to acknowledge every message",
        Duration::from_secs(120),
        || {
            ingest.assert_running();
            (bus.stream_len("EVENTS"), bus.consumer("EVENTS", "ingest"))
        },
        |(len, c)| (*len == Some(messages) && c.is_some_and(|c| c.drained() && c.ack_floor_stream_seq == messages)).then_some(()),
    );
}

#[test]
fn an_ingest_store_restored_from_a_backup_reads_events_again_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines = synth_lines(300, 2031, Some(4_000));
    let ids: BTreeSet<String> = lines.iter().map(|l| event_id(l)).collect();
    let (first, second) = lines.split_at(2_000);
    // One refused input in each half: the first is in the backup, the second is not.
    let first: Vec<String> = first.iter().cloned().chain([bad_line("0a6c5f1e-0000-4000-8000-000000000001")]).collect();
    let second: Vec<String> = second.iter().cloned().chain([bad_line("0a6c5f1e-0000-4000-8000-000000000002")]).collect();
    let (file1, file2, all) = (tmp.path().join("first.ndjson"), tmp.path().join("second.ndjson"), tmp.path().join("all.ndjson"));
    write_lines(&file1, &first);
    write_lines(&file2, &second);
    write_lines(&all, &[first.clone(), second.clone()].concat());
    let messages = (first.len() + second.len()) as u64;
    let (ingest_dir, projector_dir, import_dir, backup) =
        (tmp.path().join("ingest"), tmp.path().join("projector"), tmp.path().join("import"), tmp.path().join("backup"));
    let reference = import(&all, &import_dir);

    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let bus = Bus::connect(&url);
    let mut ingest = Service::ingest(&url, &ingest_dir, tmp.path());
    let mut projector = Service::projector(&url, &projector_dir, tmp.path());
    ingest.start();
    projector.start();
    let summary = publisher_summary(publisher(&file1, &url), Duration::from_secs(120));
    assert_eq!(summary["failed"], 0, "{summary}");
    wait_ingest_drained(&bus, first.len() as u64, &mut ingest);

    wait_pipeline_drained(&bus, first.len() as u64, Duration::from_secs(120), &mut [&mut ingest, &mut projector]);

    // The backup: copies of the stopped services' data directories.
    let (ingest_backup, projector_backup) = (backup.join("ingest"), backup.join("projector"));
    std::fs::create_dir_all(&backup).expect("mkdir");
    for (service, dir, copy) in [(&mut ingest, &ingest_dir, &ingest_backup), (&mut projector, &projector_dir, &projector_backup)] {
        assert!(service.sigterm(Duration::from_secs(30)).success(), "{}", service.log_tail());
        copy_dir(dir, copy);
        service.start();
    }
    let summary = publisher_summary(publisher(&file2, &url), Duration::from_secs(120));
    assert_eq!(summary["failed"], 0, "{summary}");
    wait_pipeline_drained(&bus, messages, Duration::from_secs(120), &mut [&mut ingest, &mut projector]);

    // The disks are lost; the backups are put back.
    {
        let store = Store::open(&ingest_backup.join("store")).expect("open the backup");
        assert_eq!(store.len(), 2_000, "the backup holds the first half only");
    }
    for (service, dir, copy) in [(&mut ingest, &ingest_dir, &ingest_backup), (&mut projector, &projector_dir, &projector_backup)] {
        assert!(service.sigterm(Duration::from_secs(30)).success(), "{}", service.log_tail());
        std::fs::remove_dir_all(dir).expect("remove");
        copy_dir(copy, dir);
        service.start();
    }
    // The consumers are drained already (they acknowledged everything before): wait for each
    // restored service to see that its store is behind and recreate its consumer, then for the
    // replays to end.
    for (service, says) in [(&mut ingest, "reading EVENTS again"), (&mut projector, "reading ACCEPTED again")] {
        poll_until(
            "the restored service to replay its stream",
            Duration::from_secs(60),
            || {
                service.assert_running();
                service.log_text()
            },
            |log| log.contains(says).then_some(()),
        );
    }
    wait_ingest_drained(&bus, messages, &mut ingest);
    poll_until(
        "the projector consumer to acknowledge all of ACCEPTED again",
        Duration::from_secs(120),
        || (bus.stream_len("ACCEPTED"), bus.consumer("ACCEPTED", "projector")),
        |(len, c)| len.filter(|n| c.is_some_and(|c| c.drained() && c.ack_floor_stream_seq == *n)).map(|_| ()),
    );
    wait_pipeline_drained(&bus, messages, Duration::from_secs(240), &mut [&mut ingest, &mut projector]);
    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}; log:\n{}", service.name, service.log_tail());
    }

    wait_success(reference, "registry import", Duration::from_secs(300));
    // Both stores verify; the labels equal an import's; every event is stored once.
    for dir in [&ingest_dir, &projector_dir] {
        let out = registry().arg("verify").arg("--data").arg(dir).output().expect("run registry verify");
        assert!(out.status.success(), "registry verify --data {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    assert_same_labels(&labels(&projector_dir), &labels(&import_dir));
    let store = Store::open(&ingest_dir.join("store")).expect("open the ingest store");
    assert_eq!(store.len(), ids.len() as u64, "ingest stored every event exactly once");
    for id in &ids {
        assert!(store.seq_of_event_id(id).expect("lookup").is_some(), "event {id} missing from the ingest store");
    }
    // Alerts: each alert_id once on ALERTS (the replay's repeats fell in the duplicate window),
    // and every alert the restored projector raised is there. Not the converse: the alerts of
    // the lost disk's history stay on ALERTS, and a replay batches differently (no alert of an
    // intermediate state it never passed through).
    let mut published = BTreeSet::new();
    for m in bus.read_all("ALERTS") {
        let id = m.msg_id.clone().expect("Nats-Msg-Id");
        assert!(published.insert(id.clone()), "alert {id} published twice");
    }
    let pstore = Store::open(&projector_dir.join("store")).expect("open the projector store");
    let raised: BTreeSet<String> =
        pstore.alerts_since(i64::MIN, usize::MAX).expect("alert history").into_iter().map(|a| a.alert_id).collect();
    assert!(!raised.is_empty() && raised.is_subset(&published), "every alert raised after the restore is on ALERTS");
    drop(pstore);
    let rejected: Vec<_> = store.rejections().map(|r| r.expect("rejection")).map(|r| (r.reason, r.source)).collect();
    let subject = "registry.events.fuscc.followup.recorded".to_owned();
    assert_eq!(
        rejected,
        [("schema".to_owned(), subject.clone()), ("schema".to_owned(), subject)],
        "each refused message kept once: the one in the backup not again on the replay"
    );
}
