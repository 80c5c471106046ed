//! `registry import` and `registry verify` as a user runs them: counts, line-numbered rejections,
//! idempotent re-import, rejected inputs kept byte for byte, tamper detection, hostile input.

use std::path::Path;
use std::process::{Command, Output};

use registry_store::Store;

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn import(file: &Path, data: &Path) -> Output {
    registry().arg("import").arg(file).arg("--data").arg(data).output().expect("run import")
}

fn summary(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}): {text}"))
}

fn event(id: &str, patient: &str, status: &str) -> String {
    serde_json::json!({
        "event_id": id, "event_type": "followup.recorded", "schema_version": 1,
        "patient_id": patient, "site_id": "fuscc", "occurred_on": "2016-05-03",
        "recorded_at": "2016-05-04T09:12:00Z", "supersedes": null, "payload": {"status": status}
    })
    .to_string()
}

const ID1: &str = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b61";
const ID2: &str = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b62";

#[test]
fn import_counts_reports_rejections_by_line_and_keeps_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("in.ndjson");
    let lines = [
        event(ID1, "P001", "alive"),
        event(ID1, "P001", "alive"),             // duplicate: stored once
        event(ID1, "P001", "lost_to_follow_up"), // same id, other content: event_id_conflict
        "{\"event_id\": ".to_owned(),            // malformed
        event(ID2, "P002", "dancing"),           // schema
        String::new(),                           // blank: skipped
        event(ID2, "P002", "alive"),
    ];
    std::fs::write(&file, lines.join("\n")).expect("write");
    let data = tmp.path().join("data");
    let out = import(&file, &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["read"], 6);
    assert_eq!(s["accepted"], 2);
    assert_eq!(s["duplicate"], 1);
    assert_eq!(s["rejected"], 3);
    assert_eq!(s["rejected_by_reason"]["event_id_conflict"], 1);
    assert_eq!(s["rejected_by_reason"]["malformed"], 1);
    assert_eq!(s["rejected_by_reason"]["schema"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: event_id_conflict"), "{err}");
    assert!(err.contains("line 4: malformed"), "{err}");
    assert!(err.contains("line 5: schema: /payload/status"), "{err}");

    // Importing the same file again stores nothing new.
    let again = summary(&import(&file, &data));
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicate"], 3);

    let store = Store::open(&data.join("store")).expect("open");
    assert_eq!(store.len(), 2);
    let rejected: Vec<_> = store.rejections().map(|r| r.expect("read rejection")).collect();
    assert!(rejected.iter().any(|r| r.raw == lines[3].as_bytes() && r.reason == "malformed"));
    assert!(rejected.iter().any(|r| r.source.ends_with(":5") && r.reason == "schema"));
}

#[test]
fn a_flipped_byte_in_the_log_fails_verify_naming_the_first_bad_seq() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("in.ndjson");
    let lines: Vec<String> = (0..5)
        .map(|i| event(&format!("5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b7{i}"), &format!("P00{i}"), "alive"))
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let data = tmp.path().join("data");
    assert!(import(&file, &data).status.success());
    let ok = registry().arg("verify").arg("--data").arg(&data).output().expect("verify");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    {
        let store = Store::open(&data.join("store")).expect("open");
        store.tamper_flip_byte(3, registry_store::RECORD_HEADER_LEN + 20).expect("tamper");
    }
    let bad = registry().arg("verify").arg("--data").arg(&data).output().expect("verify");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("seq 3"), "message names the first bad seq: {err}");
}

#[test]
fn verify_fails_when_stored_labels_differ_from_a_replay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("in.ndjson");
    std::fs::write(&file, event(ID1, "P001", "alive")).expect("write");
    let data = tmp.path().join("data");
    assert!(import(&file, &data).status.success());
    {
        let store = Store::open(&data.join("store")).expect("open");
        let through = store.labels_through_seq().expect("through");
        let forged = serde_json::json!({"as_of": "2020-01-01", "through_seq": through, "labels": {"patient_id": "P001", "status": "indexed"}});
        store.put_labels_batch([("P001", Some(forged.to_string()))], through).expect("forge");
    }
    let bad = registry().arg("verify").arg("--data").arg(&data).output().expect("verify");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("P001"));
}

#[test]
fn hostile_input_is_rejected_with_a_reason_and_the_import_carries_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("in.ndjson");
    let good = event(ID1, "P001", "alive");
    let mut content: Vec<Vec<u8>> = Vec::new();
    // Every truncation of a valid event.
    for cut in 1..good.len() {
        content.push(good.as_bytes()[..cut].to_vec());
    }
    content.push(b"\xff\xfe\x00 not utf-8 \xc3\x28".to_vec());
    content.push(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    let mut huge = good.clone().into_bytes();
    huge.truncate(huge.len() - 1);
    huge.extend_from_slice(format!(",\"x\":\"{}\"}}", "a".repeat(10 << 20)).as_bytes());
    content.push(huge);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 256) as u8
            })
            .filter(|b| *b != b'\n')
            .collect();
        content.push(bytes);
    }
    content.push(good.into_bytes());
    let mut bytes = Vec::new();
    for c in &content {
        bytes.extend_from_slice(c);
        bytes.push(b'\n');
    }
    std::fs::write(&file, bytes).expect("write");
    let data = tmp.path().join("data");
    let out = import(&file, &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    let read = s["read"].as_u64().expect("read");
    let accounted = s["accepted"].as_u64().unwrap_or(0) + s["duplicate"].as_u64().unwrap_or(0) + s["rejected"].as_u64().unwrap_or(0);
    assert_eq!(read, accounted, "{s}");
    assert_eq!(s["accepted"], 1, "only the complete event is accepted: {s}");
    assert_eq!(s["rejected_by_reason"]["too_large"], 1, "{s}");
    let store = Store::open(&data.join("store")).expect("open");
    let kept = store.rejections().count() as u64;
    assert_eq!(kept, s["rejected"].as_u64().expect("rejected"), "every rejection is stored");
}
