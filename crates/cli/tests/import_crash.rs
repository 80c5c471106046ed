//! Crash safety of `registry import` (issue: foundation): SIGKILL at 10 random moments while
//! importing 100,000 events, re-run each time; then every event is in the log exactly once and the
//! chain (and the labels) verify.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use registry_store::Store;

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

/// A small deterministic generator (xorshift), so the kill moments are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn synth_events(path: &Path, want: usize) -> Vec<String> {
    let out = registry()
        .args(["synth", "--patients", "8000", "--seed", "7"])
        .output()
        .expect("run registry synth");
    assert!(out.status.success(), "synth failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("synth writes UTF-8");
    let lines: Vec<&str> = text.lines().take(want).collect();
    assert_eq!(lines.len(), want, "synth produced fewer than {want} events");
    std::fs::write(path, lines.join("\n") + "\n").expect("write events");
    lines.iter().map(|l| event_id(l)).collect()
}

fn event_id(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("synth line is JSON");
    v["event_id"].as_str().expect("event_id").to_owned()
}

#[test]
fn sigkill_at_ten_random_points_loses_nothing_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.ndjson");
    let data = tmp.path().join("data");
    let ids = synth_events(&file, 100_000);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "synth event ids are unique");

    // Time one uninterrupted import of a copy to choose kill moments inside the run.
    let probe = tmp.path().join("probe");
    let t = Instant::now();
    let st = registry().arg("import").arg(&file).arg("--data").arg(&probe).stdout(Stdio::null()).status().expect("probe import");
    assert!(st.success());
    let full = t.elapsed().as_millis() as u64;
    std::fs::remove_dir_all(&probe).ok();

    // A re-run first re-reads the prefix it already stored (duplicates are cheaper than new
    // events), so kill moments are drawn from the first half of a full run, and runs that
    // finish before their moment do not count: the loop goes on until 10 runs were killed.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut killed = 0;
    let mut attempts = 0;
    while killed < 10 && attempts < 40 {
        attempts += 1;
        let mut child = registry()
            .arg("import")
            .arg(&file)
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn import");
        let wait_ms = 10 + rng.next() % (full / 2).max(20);
        std::thread::sleep(Duration::from_millis(wait_ms));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
            killed += 1;
        }
        child.wait().expect("reap");
    }
    assert_eq!(killed, 10, "10 runs killed mid-import within {attempts} attempts");

    let out = registry().arg("import").arg(&file).arg("--data").arg(&data).output().expect("final import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_owned();
    let summary: serde_json::Value = serde_json::from_str(&last).expect("summary JSON");
    assert_eq!(summary["read"], 100_000);
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["accepted"].as_u64().unwrap_or(0) + summary["duplicate"].as_u64().unwrap_or(0), 100_000);

    let verify = registry().arg("verify").arg("--data").arg(&data).output().expect("verify");
    assert!(verify.status.success(), "verify failed: {}", String::from_utf8_lossy(&verify.stderr));

    // The report snapshot, refreshed by imports killed at random points, gives the full recompute.
    let report = |extra: &[&str]| {
        let out = registry()
            .args(["report", "--as-of", "2018-05-31", "--data"])
            .arg(&data)
            .args(extra)
            .output()
            .expect("report");
        assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    assert!(report(&[]) == report(&["--recompute"]), "report from the snapshot differs from a full recompute");

    let store = Store::open(&data.join("store")).expect("open store");
    assert_eq!(store.len(), 100_000, "every event stored exactly once");
    let mut seen = HashSet::new();
    for e in store.iter_from(1) {
        let e = e.expect("read log");
        let v: serde_json::Value = serde_json::from_slice(&e.content).expect("stored JSON");
        let id = v["event_id"].as_str().expect("event_id").to_owned();
        assert!(seen.insert(id.clone()), "event {id} stored twice");
    }
    let want: HashSet<String> = ids.into_iter().collect();
    assert_eq!(seen, want, "the log holds exactly the file's events");
}
