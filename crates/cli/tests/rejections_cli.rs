//! `registry rejections` as a registry reads its refused inputs back: every field of a listing,
//! the filters, a fixed resend resolving a rejection, and `--raw` giving the bytes exactly as
//! received (invalid UTF-8 and oversized inputs included), in an import's data directory and in a
//! `registry serve` one.

use std::path::Path;
use std::process::{Command, Output};

use registry_store::{Rejection, Store};
use serde_json::Value;

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn import(file: &Path, data: &Path) {
    ok(registry().arg("import").arg(file).arg("--data").arg(data).output().expect("run import"));
}

fn list(data: &Path, filters: &[&str]) -> Vec<Value> {
    let out = ok(registry().arg("rejections").arg("--data").arg(data).args(filters).output().expect("run rejections"));
    String::from_utf8(out.stdout)
        .expect("UTF-8 listing")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn raw(data: &Path, id: u64) -> Vec<u8> {
    ok(registry().arg("rejections").arg("--data").arg(data).arg("--raw").arg(id.to_string()).output().expect("run")).stdout
}

fn ids(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["id"].as_u64().expect("id")).collect()
}

fn followup(id: &str, patient: &str, site: &str, status: &str) -> String {
    serde_json::json!({
        "event_id": id, "event_type": "followup.recorded", "schema_version": 1,
        "patient_id": patient, "site_id": site, "occurred_on": "2016-05-03",
        "recorded_at": "2016-05-04T09:12:00Z", "supersedes": null, "payload": {"status": status}
    })
    .to_string()
}

const ID1: &str = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b61";
const ID2: &str = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b62";
const ID3: &str = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b63";

#[test]
fn rejections_are_listed_filtered_resolved_by_a_fixed_resend_and_given_back_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let first = tmp.path().join("first.ndjson");
    let lines = [
        followup(ID1, "P001", "fuscc", "alive"),
        followup(ID1, "P001", "fuscc", "lost_to_follow_up"), // event_id_conflict
        "{\"event_id\": ".to_owned(),                        // malformed
        followup(ID2, "P002", "pumch", "dancing"),           // schema
        followup(ID3, "P003", "pumch", "dead?"),             // schema
    ];
    std::fs::write(&first, lines.join("\n")).expect("write");
    import(&first, &data);

    let all = list(&data, &[]);
    assert_eq!(ids(&all), [1, 2, 3, 4], "oldest first: {all:?}");
    let conflict = &all[0];
    assert_eq!(conflict["reason"], "event_id_conflict");
    assert_eq!(conflict["source"], format!("file:{}:2", first.display()));
    assert_eq!(conflict["site"], "fuscc");
    assert_eq!(conflict["event_id"], ID1);
    assert!(conflict["message"].as_str().expect("message").contains("already stored (seq 1)"), "{conflict}");
    assert_eq!(conflict["raw"], lines[1].as_str());
    assert_eq!(conflict["raw_bytes"], lines[1].len());
    assert!(conflict["rejected_at"].as_str().expect("time").ends_with('Z'), "{conflict}");
    let malformed = &all[1];
    assert_eq!((malformed["reason"].as_str(), malformed["site"].as_str(), malformed["event_id"].as_str()), (Some("malformed"), None, None));
    assert_eq!(malformed["raw"], lines[2].as_str());
    assert!(all.iter().all(|l| l["resolved_by"].is_null()), "nothing resent yet: {all:?}");

    assert_eq!(ids(&list(&data, &["--reason", "schema"])), [3, 4]);
    assert_eq!(ids(&list(&data, &["--site", "pumch"])), [3, 4]);
    assert_eq!(ids(&list(&data, &["--site", "pumch", "--reason", "malformed"])), Vec::<u64>::new());
    assert_eq!(raw(&data, 3), lines[3].as_bytes(), "--raw writes the input exactly, no newline added");

    // The site fixes P002's event and sends it again under the same id; the conflicting P001
    // content is sent again unchanged, which changes nothing.
    let second = tmp.path().join("second.ndjson");
    std::fs::write(&second, [followup(ID2, "P002", "pumch", "alive"), lines[1].clone()].join("\n")).expect("write");
    import(&second, &data);
    let all = list(&data, &[]);
    assert_eq!(ids(&all), [1, 2, 3, 4, 5], "the repeated conflict is kept again: {all:?}");
    assert_eq!(all[2]["resolved_by"]["seq"], 2, "the fix is stored at seq 2: {all:?}");
    assert!(all[2]["resolved_by"]["received_at"].is_string());
    assert!(all[0]["resolved_by"].is_null() && all[4]["resolved_by"].is_null(), "a conflict's stored event is not its fix");
    assert_eq!(ids(&list(&data, &["--open"])), [1, 2, 4, 5]);
    assert_eq!(ids(&list(&data, &["--open", "--site", "pumch"])), [4]);
}

#[test]
fn a_serve_data_directory_lists_the_ingests_rejections_with_the_subjects_site() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("live");
    let big = vec![b'x'; 300 * 1024];
    let not_utf8 = [b'{', 0xff, 0xfe, b'}'];
    {
        // What `registry serve` leaves: the ingest's store under DIR/ingest/store.
        let store = Store::open(&data.join("ingest").join("store")).expect("open");
        let mismatch = followup(ID1, "P001", "fuscc", "alive");
        for (raw, source, reason) in [
            (mismatch.as_bytes(), "registry.events.pumch.followup.recorded", "site_mismatch"),
            (&not_utf8[..], "registry.events.fuscc.imaging.assessed", "malformed"),
            (&big[..], "registry.events.fuscc.imaging.assessed", "too_large"),
        ] {
            store
                .reject(Rejection { raw, source, reason, message: "why", at_micros: 1_700_000_000_000_000, stream_seq: None })
                .expect("reject");
        }
    }
    let all = list(&data, &[]);
    assert_eq!(ids(&all), [1, 2, 3]);
    assert_eq!(all[0]["site"], "pumch", "the publisher's site is the subject's, not the event's: {all:?}");
    assert_eq!(all[0]["rejected_at"], "2023-11-14T22:13:20.000000Z");
    assert!(all[1]["raw"].is_null() && all[1]["raw_bytes"] == 4, "not UTF-8: only with --raw: {all:?}");
    assert!(all[2]["raw"].is_null() && all[2]["raw_bytes"] == 300 * 1024, "larger than an event: only with --raw");
    assert_eq!(ids(&list(&data, &["--site", "fuscc"])), [2, 3]);
    assert_eq!(raw(&data, 2), not_utf8);
    assert_eq!(raw(&data, 3), big);
}

#[test]
fn usage_errors_are_one_clear_line_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let file = tmp.path().join("in.ndjson");
    std::fs::write(&file, "not json\n").expect("write");
    import(&file, &data);
    for (args, says) in [
        (vec!["--raw", "9"], "no rejection 9"),
        (vec!["--reason", "nope"], "is not a reason code"),
    ] {
        let out = registry().arg("rejections").arg("--data").arg(&data).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = registry().arg("rejections").arg("--data").arg(tmp.path().join("nowhere")).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registry store in"), "{}", String::from_utf8_lossy(&out.stderr));
}
