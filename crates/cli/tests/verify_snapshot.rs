//! `registry verify` checks the report snapshot (docs/report.md, "Snapshot", "Verification"):
//! on a freshly imported synthetic cohort it passes; a forged row, a widened range, a forged
//! `foreign` list, an entry that claims to be current without an event of its patient, a
//! checkpoint past the log, a missing or undecodable entry each fail naming the patient; an entry
//! made stale by a later event (the report refolds it) is skipped, not reported.

use std::path::Path;
use std::process::{Command, Output};

use registry_ingest::{ingest_batch, InputOutcome, RawInput};
use registry_store::Store;
use serde_json::{json, Value};

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A data directory with the 40-patient ni2019 cohort (seed 3) imported (which writes the
/// snapshot), and its events.
fn imported(tmp: &Path) -> (std::path::PathBuf, Vec<Value>) {
    let out = ok(registry().args(["synth", "--patients", "40", "--seed", "3", "--profile", "ni2019"]).output().expect("synth"), "synth");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("event JSON")).collect();
    let file = tmp.join("cohort.ndjson");
    std::fs::write(&file, &text).expect("write");
    let data = tmp.join("data");
    let out = ok(registry().arg("import").arg(&file).arg("--data").arg(&data).output().expect("import"), "import");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("import summary");
    assert_eq!(summary["rejected"], 0, "{summary}");
    (data, events)
}

fn verify(data: &Path) -> Output {
    registry().arg("verify").arg("--data").arg(data).output().expect("run verify")
}

/// Verify fails and its stderr names `pid` with `what`; returns stderr.
fn fails(data: &Path, pid: &str, what: &str) -> String {
    let out = verify(data);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "verify should fail: {err}");
    assert!(
        err.lines().any(|l| l.contains("report snapshot") && l.contains(&format!("patient {pid}:")) && l.contains(what)),
        "no line naming {pid} with {what:?}: {err}"
    );
    err
}

/// The report_snapshot object of verify's summary (verify must pass).
fn passes(data: &Path) -> Value {
    let out = ok(verify(data), "verify");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("verify summary");
    summary["report_snapshot"].clone()
}

fn open(data: &Path) -> Store {
    Store::open(&data.join("store")).expect("open store")
}

/// Every snapshot entry as JSON, by patient id.
fn entries(store: &Store) -> Vec<(String, Value)> {
    store
        .snapshot_records()
        .expect("records")
        .into_iter()
        .map(|(pid, bytes)| (pid, serde_json::from_slice::<Value>(&bytes).expect("entry JSON")))
        .collect()
}

/// The first patient (by id) whose entry has a variant with a listed row, and its entry.
fn listed_entry(store: &Store) -> (String, Value) {
    entries(store)
        .into_iter()
        .find(|(_, e)| e["variants"].as_array().is_some_and(|vs| vs.iter().any(|v| v["row"]["labels"]["os"].is_object())))
        .expect("an entry with a listed row")
}

/// Writes `entry` for `pid`, keeping the checkpoint.
fn put(store: &Store, pid: &str, entry: &Value) {
    let c = store.snapshot_checkpoint().expect("checkpoint");
    store.put_snapshot_batch([(pid, Some(entry.to_string()))], c, true).expect("write entry");
}

fn shift_days(date: &Value, days: i64) -> Value {
    let d = chrono::NaiveDate::parse_from_str(date.as_str().expect("a date"), "%Y-%m-%d").expect("date");
    json!((d + chrono::Duration::days(days)).to_string())
}

#[test]
fn a_fresh_import_passes_and_a_forged_row_fails_naming_the_patient() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, _) = imported(tmp.path());
    // Reports at earlier cut-offs write back variants bounded on both sides.
    for as_of in ["2016-12-31", "2017-06-30"] {
        ok(registry().args(["report", "--as-of", as_of, "--data"]).arg(&data).output().expect("report"), "report");
    }
    let t = std::time::Instant::now();
    let snap = passes(&data);
    eprintln!("verify on 40 patients: {:.3} s", t.elapsed().as_secs_f64());
    assert_eq!(snap["entries"], 40, "{snap}");
    assert_eq!(snap["checked"], 40, "{snap}");
    assert_eq!(snap["stale_skipped"], 0, "{snap}");
    assert!(snap["variants_checked"].as_u64().unwrap_or(0) > 80, "{snap}");

    let pid = {
        let store = open(&data);
        let (pid, mut entry) = listed_entry(&store);
        let variants = entry["variants"].as_array_mut().expect("variants");
        let v = variants.iter_mut().find(|v| v["row"]["labels"]["os"].is_object()).expect("a listed row");
        let days = v["row"]["labels"]["os"]["days"].as_i64().expect("os days");
        v["row"]["labels"]["os"]["days"] = json!(days + 30);
        put(&store, &pid, &entry);
        pid
    };
    fails(&data, &pid, "labels.os.days");

    // A date in the row: the same.
    {
        let store = open(&data);
        let (_, mut entry) = listed_entry(&store);
        let variants = entry["variants"].as_array_mut().expect("variants");
        let v = variants.iter_mut().find(|v| v["row"]["labels"]["os"].is_object()).expect("a listed row");
        v["row"]["labels"]["os"]["days"] = json!(v["row"]["labels"]["os"]["days"].as_i64().unwrap_or(0) - 30);
        let end = v["row"]["labels"]["os"]["end"].clone();
        v["row"]["labels"]["os"]["end"] = shift_days(&end, -1);
        put(&store, &pid, &entry);
    }
    let err = fails(&data, &pid, "labels.os.end");
    eprintln!("{err}");
    assert!(!err.contains("labels.os.days"), "only the date differs now: {err}");
}

#[test]
fn a_widened_range_fails_naming_the_patient() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, _) = imported(tmp.path());
    let pid = {
        let store = open(&data);
        let (pid, mut entry) = entries(&store)
            .into_iter()
            .find(|(_, e)| e["variants"].as_array().is_some_and(|vs| vs.iter().any(|v| v["until"].is_string())))
            .expect("a variant with an upper bound");
        let variants = entry["variants"].as_array_mut().expect("variants");
        let v = variants.iter_mut().find(|v| v["until"].is_string()).expect("bounded");
        v["until"] = shift_days(&v["until"], 400);
        put(&store, &pid, &entry);
        pid
    };
    fails(&data, &pid, "is exact for");

    // A link target added to `foreign` (it would make later events stale the entry wrongly;
    // dropping one would keep a stale entry in use).
    let other = {
        let store = open(&data);
        let (other, mut entry) = entries(&store).pop().expect("an entry");
        assert_ne!(other, pid);
        entry["foreign"].as_array_mut().expect("foreign").push(json!(uuid::Uuid::new_v4().to_string()));
        put(&store, &other, &entry);
        other
    };
    let err = fails(&data, &other, "foreign link targets differ");
    assert!(err.contains(&format!("patient {pid}:")), "both forgeries named: {err}");
}

#[test]
fn a_stale_entry_is_skipped_but_one_claiming_to_be_current_is_checked() {
    // `registry import` refreshes the snapshot at its end, so a second import leaves no stale
    // entry. The bus ingest service appends without refreshing it: the same call here.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, events) = imported(tmp.path());
    let (pid, seq) = {
        let store = open(&data);
        let (pid, _) = listed_entry(&store);
        let mine: Vec<&Value> = events.iter().filter(|e| e["patient_id"] == json!(pid)).collect();
        let last = mine.iter().map(|e| e["occurred_on"].as_str().expect("date")).max().expect("events");
        let on = shift_days(&json!(last), 30);
        let event = json!({
            "event_id": uuid::Uuid::new_v4().to_string(), "event_type": "followup.recorded", "schema_version": 1,
            "patient_id": pid, "site_id": mine[0]["site_id"], "occurred_on": on,
            "recorded_at": format!("{}T09:00:00Z", on.as_str().unwrap_or_default()), "supersedes": null,
            "payload": {"status": "alive"}
        })
        .to_string();
        let input = RawInput { bytes: event.as_bytes(), source: "test", subject_site: None, stream_seq: None };
        let outcome = ingest_batch(&store, &[input], chrono::Utc::now().timestamp_micros()).expect("append");
        let seq = match &outcome[..] {
            [InputOutcome::Accepted { seq, .. }] => *seq,
            other => panic!("not accepted: {other:?}"),
        };
        (pid, seq)
    };
    let snap = passes(&data);
    assert_eq!(snap["stale_skipped"], 1, "{snap}");
    assert_eq!(snap["checked"], 39, "{snap}");

    // Stale, the report refolds it: even a forged row is not what the report reads.
    let store = open(&data);
    let mut entry: Value = serde_json::from_slice(&store.get_snapshot(&pid).expect("get").expect("entry")).expect("JSON");
    for v in entry["variants"].as_array_mut().expect("variants") {
        if v["row"]["labels"]["os"].is_object() {
            v["row"]["labels"]["os"]["days"] = json!(0);
        }
    }
    put(&store, &pid, &entry);
    drop(store);
    assert_eq!(passes(&data)["stale_skipped"], 1);

    // Claiming to be folded through the new event (so the report would use it) fails.
    let store = open(&data);
    let mut entry: Value = serde_json::from_slice(&store.get_snapshot(&pid).expect("get").expect("entry")).expect("JSON");
    entry["through_seq"] = json!(seq);
    put(&store, &pid, &entry);
    drop(store);
    fails(&data, &pid, "differs from a fresh projection");

    // Or through a seq before it, with the checkpoint moved past it: the report uses the entry
    // without the event.
    let store = open(&data);
    entry["through_seq"] = json!(seq - 1);
    store.put_snapshot_batch([(pid.as_str(), Some(entry.to_string()))], seq, true).expect("write");
    drop(store);
    fails(&data, &pid, &format!("without its own event at seq {seq}"));
}

#[test]
fn a_checkpoint_past_the_log_a_missing_or_undecodable_entry_fail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, _) = imported(tmp.path());
    let store = open(&data);
    let last = store.last_seq();
    store.put_snapshot_batch(Vec::<(&str, Option<Vec<u8>>)>::new(), last + 3, true).expect("checkpoint");
    drop(store);
    let out = verify(&data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("checkpoint (seq {}) is past the log's last seq {last}", last + 3)), "{err}");

    let store = open(&data);
    store.put_snapshot_batch(Vec::<(&str, Option<Vec<u8>>)>::new(), last, true).expect("checkpoint");
    let ids: Vec<String> = store.snapshot_records().expect("records").into_iter().map(|(p, _)| p).collect();
    store.put_snapshot_batch([(ids[0].as_str(), None::<Vec<u8>>)], last, true).expect("delete");
    store.put_snapshot_batch([(ids[1].as_str(), Some(b"{\"through_seq\":".to_vec()))], last, true).expect("garble");
    drop(store);
    let err = fails(&data, &ids[0], "no entry");
    assert!(err.contains(&format!("patient {}: the entry does not decode", ids[1])), "{err}");
}
