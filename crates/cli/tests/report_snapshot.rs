//! `registry report` over its snapshot (docs/report.md, "Snapshot") gives the same bytes as a
//! full recompute from the log (`--recompute`): on a freshly imported store, after appends that
//! touch some patients and add others, after retractions and corrections across several patients,
//! with `--known-at`, and at several `--as-of` (before and after the report wrote back what it
//! refolded). `--timings` says how many patients came from the snapshot, so the tests also check
//! that the snapshot is used, not only that the output is right.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn import(data: &Path, lines: &[String], name: &str) {
    let file = data.parent().expect("parent").join(name);
    std::fs::write(&file, lines.join("\n") + "\n").expect("write events");
    let out = ok(registry().arg("import").arg(&file).arg("--data").arg(data).output().expect("run import"), "import");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("import summary");
    assert_eq!(summary["rejected"], 0, "{summary}");
}

/// (report text, patients from the snapshot, patients refolded).
fn report(data: &Path, args: &[&str]) -> (String, usize, usize) {
    let out = ok(
        registry().arg("report").arg("--data").arg(data).args(args).arg("--timings").output().expect("run report"),
        "report",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.starts_with("snapshot: ")).unwrap_or_else(|| panic!("no snapshot line in {stderr}"));
    let n: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (held, refolded) = match n[..] {
        [held, refolded] => (held, refolded),
        // A full pass: `N patients to refold: every patient from one pass over the log`.
        _ => (0, n.first().copied().unwrap_or(usize::MAX)),
    };
    (String::from_utf8(out.stdout).expect("utf-8"), held, refolded)
}

fn recompute(data: &Path, args: &[&str]) -> String {
    let out = ok(
        registry().arg("report").arg("--data").arg(data).args(args).arg("--recompute").output().expect("run report"),
        "report --recompute",
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The report in a view equals the full recompute; returns (from snapshot, refolded).
fn same(data: &Path, args: &[&str]) -> (usize, usize) {
    let (text, held, refolded) = report(data, args);
    assert!(text == recompute(data, args), "report {args:?} differs from a full recompute");
    (held, refolded)
}

/// `registry verify` passes, the report snapshot included.
fn verified(data: &Path) {
    let out = ok(registry().arg("verify").arg("--data").arg(data).output().expect("run verify"), "verify");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("verify summary");
    assert!(summary["report_snapshot"]["checked"].as_u64().unwrap_or(0) > 0, "{summary}");
}

fn synth(patients: u32, seed: u32) -> Vec<Value> {
    let out = ok(
        registry()
            .args(["synth", "--patients", &patients.to_string(), "--seed", &seed.to_string(), "--profile", "ni2019"])
            .output()
            .expect("run synth"),
        "synth",
    );
    String::from_utf8(out.stdout).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("event JSON")).collect()
}

fn by_patient(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events {
        m.entry(e["patient_id"].as_str().expect("patient_id").to_owned()).or_default().push(e.clone());
    }
    m
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn retraction(of: &Value, on: &str) -> Value {
    json!({
        "event_id": new_id(), "event_type": "event.retracted", "schema_version": 1,
        "patient_id": of["patient_id"], "site_id": "demo", "occurred_on": on,
        "recorded_at": format!("{on}T12:00:00Z"), "supersedes": null,
        "payload": {"target_event_id": of["event_id"], "reason": "entered in error"}
    })
}

fn correction(of: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = of.clone();
    c["event_id"] = json!(new_id());
    c["supersedes"] = of["event_id"].clone();
    edit(&mut c);
    c
}

const VIEWS: [&[&str]; 4] = [&["--as-of", "2018-05-31"], &["--as-of", "2017-06-30"], &["--as-of", "2030-01-01"], &[]];

#[test]
fn snapshot_reports_equal_full_recomputes_through_appends_retractions_and_views() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let events = synth(160, 11);
    let patients = by_patient(&events);
    let ids: Vec<&String> = patients.keys().collect();
    assert!(ids.len() >= 150);

    // First import: everything except the last event of 12 patients and every event of the
    // last 6 patients.
    let touched: Vec<&String> = ids.iter().step_by(11).take(12).copied().collect();
    let newcomers: Vec<&String> = ids[ids.len() - 6..].to_vec();
    let mut first = Vec::new();
    let mut later = Vec::new();
    for (pid, evs) in &patients {
        for (i, e) in evs.iter().enumerate() {
            let held = newcomers.contains(&pid) || (touched.contains(&pid) && i + 1 == evs.len());
            if held { later.push(e.to_string()) } else { first.push(e.to_string()) }
        }
    }
    import(&data, &first, "first.ndjson");

    // Fresh store: the import wrote the snapshot, nothing is refolded at the study cut-off.
    let (held, refolded) = same(&data, &["--as-of", "2018-05-31"]);
    assert_eq!(refolded, 0, "the import's snapshot serves the study cut-off");
    assert!(held >= 150);
    for v in VIEWS {
        same(&data, v);
    }
    // The views refolded above were written back: asked again, they come from the snapshot.
    for v in VIEWS {
        let (_, refolded) = same(&data, v);
        assert_eq!(refolded, 0, "{v:?} after write-back");
    }
    let before_second = recompute(&data, &["--as-of", "2018-05-31"]);
    let known_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // Appends touching 12 patients and adding 6, through `registry import`.
    import(&data, &later, "later.ndjson");
    for v in VIEWS {
        same(&data, v);
    }
    // Knowledge cut-off before the appends: the same numbers as then (only `known_at` differs).
    let (text, _, _) = report(&data, &["--as-of", "2018-05-31", "--known-at", &known_at]);
    let mut then: Value = serde_json::from_str(&text).expect("JSON");
    then["known_at"] = Value::Null;
    assert!(then == serde_json::from_str::<Value>(&before_second).expect("JSON"), "--known-at before the appends");
    same(&data, &["--as-of", "2018-05-31", "--known-at", &known_at]);
    same(&data, &["--as-of", "2017-06-30", "--known-at", &known_at]);

    // Retractions and corrections across several patients, appended by import (the import
    // refreshes its snapshot view) and then by a report's write-back at another view.
    let indexed: Vec<&String> = ids
        .iter()
        .copied()
        .filter(|p| patients[*p].iter().any(|e| e["event_type"] == "treatment.started"))
        .take(8)
        .collect();
    assert!(indexed.len() >= 4);
    let mut fixes = Vec::new();
    // Retract a crizotinib start (the patient leaves the analysis) and a scan.
    let start = patients[indexed[0]].iter().find(|e| e["event_type"] == "treatment.started").expect("start");
    fixes.push(retraction(start, "2018-05-01").to_string());
    let scan = patients[indexed[1]].iter().rev().find(|e| e["event_type"] == "imaging.assessed").expect("scan");
    fixes.push(retraction(scan, "2018-05-02").to_string());
    // Correct an enrolment (age, sex change Table 1 and Table 3).
    let enrol = patients[indexed[2]].iter().find(|e| e["event_type"] == "patient.enrolled").expect("enrolment");
    fixes.push(
        correction(enrol, |c| {
            c["payload"]["birth_year"] = json!(1940);
            c["payload"]["sex"] = json!(if enrol["payload"]["sex"] == "male" { "female" } else { "male" });
        })
        .to_string(),
    );
    // A retraction filed under another patient (a cross-patient link: ignored with a finding).
    let other = patients[indexed[3]].iter().find(|e| e["event_type"] == "imaging.assessed").expect("scan");
    let mut cross = retraction(other, "2018-05-03");
    cross["patient_id"] = json!(indexed[4]);
    fixes.push(cross.to_string());
    import(&data, &fixes, "fixes.ndjson");
    let (_, refolded) = same(&data, &["--as-of", "2018-05-31"]);
    assert!(refolded <= 6, "only the patients concerned are refolded: {refolded}");
    for v in VIEWS {
        same(&data, v);
    }
    same(&data, &["--as-of", "2018-05-31", "--known-at", &known_at]);
    for format in ["md", "html"] {
        same(&data, &["--as-of", "2018-05-31", "--format", format]);
    }
    // Every entry the report uses equals a fresh fold (docs/report.md, "Verification"), the
    // cross-patient link included.
    verified(&data);
    // The ADTTE export reads the same snapshot: the same bytes as its full recompute.
    for v in [&["--as-of", "2018-05-31"][..], &["--as-of", "2016-03-31"], &["--as-of", "2018-05-31", "--known-at", &known_at]] {
        let export = |extra: &[&str]| {
            let out = registry().args(["export", "adtte", "--data"]).arg(&data).args(v).args(extra).output().expect("export");
            ok(out, "export adtte").stdout
        };
        assert!(export(&[]) == export(&["--recompute"]), "export adtte {v:?} differs from a full recompute");
    }
}

#[test]
fn a_report_appended_to_by_someone_else_refolds_only_what_changed() {
    // A store whose snapshot the import wrote, then events appended without a refresh of the
    // snapshot at the report's view: a report at another cut-off writes back, then appends.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let events = synth(80, 5);
    let patients = by_patient(&events);
    let (last_pid, last_evs) = patients.iter().next_back().expect("a patient");
    let first: Vec<String> =
        events.iter().filter(|e| e["patient_id"] != json!(last_pid)).map(Value::to_string).collect();
    import(&data, &first, "first.ndjson");
    let (_, refolded) = same(&data, &["--as-of", "2016-12-31"]);
    assert!(refolded > 0);
    let later: Vec<String> = last_evs.iter().map(Value::to_string).collect();
    import(&data, &later, "later.ndjson");
    let (_, refolded) = same(&data, &["--as-of", "2016-12-31"]);
    assert!(refolded <= 1, "{refolded}");
    let (_, refolded) = same(&data, &["--as-of", "2018-05-31"]);
    assert_eq!(refolded, 0);
    verified(&data);
}
