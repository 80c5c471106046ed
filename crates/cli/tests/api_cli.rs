//! `registry api` as a user runs it: a synthetic cohort imported with `registry import`, then the
//! API on a real port; `GET /patients/{id}` answers exactly the line `registry labels` prints for
//! the same view; no token, no answer; no token configured, no start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

const TOKEN: &str = "cli-test-token-0123456789";

struct Api(Child);

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 GET: (status, body).
fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A synthetic cohort written to `dir/cohort.ndjson` and imported into `data`: (file, number of
/// events, the lines `registry labels --as-of as_of` prints).
fn imported_cohort(dir: &std::path::Path, data: &std::path::Path, patients: u32, seed: u32, as_of: &str) -> (std::path::PathBuf, u64, Vec<String>) {
    let synth = registry().args(["synth", "--patients", &patients.to_string(), "--seed", &seed.to_string()]).output().expect("synth");
    assert!(synth.status.success());
    let file = dir.join("cohort.ndjson");
    std::fs::write(&file, &synth.stdout).expect("write");
    let n_events = String::from_utf8_lossy(&synth.stdout).lines().count() as u64;
    let import = registry().arg("import").arg(&file).arg("--data").arg(data).output().expect("import");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let labels = registry().args(["labels", "--as-of", as_of, "--data"]).arg(data).output().expect("labels");
    let lines: Vec<String> = String::from_utf8_lossy(&labels.stdout).lines().map(str::to_owned).collect();
    (file, n_events, lines)
}

#[test]
fn registry_api_serves_the_labels_registry_labels_prints() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let as_of = "2018-05-31";
    let (_, _, lines) = imported_cohort(tmp.path(), &data, 12, 7, as_of);
    assert!(lines.len() >= 10);

    // No token configured: a clear usage error, exit 2.
    let refused = registry()
        .args(["api", "--http", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env_remove("REGISTRY_API_TOKENS")
        .env_remove("REGISTRY_API_CONFIG")
        .output()
        .expect("api");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("REGISTRY_API_TOKENS"));

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = registry()
        .args(["api", "--http", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("REGISTRY_API_TOKENS", format!("{TOKEN}=*"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("api starts");
    let mut api = Api(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "registry api did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http_get(port, "/healthz", None).0, 200);
    assert_eq!(http_get(port, "/patients", None).0, 401);
    let mut first_id = String::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("labels JSON");
        let id = v["patient_id"].as_str().expect("id");
        if first_id.is_empty() {
            first_id = id.to_owned();
        }
        let (status, body) = http_get(port, &format!("/patients/{id}?as_of={as_of}"), Some(TOKEN));
        assert_eq!(status, 200);
        assert_eq!(body, format!("{line}\n"), "{id}");
    }
    let (status, list) = http_get(port, &format!("/patients?as_of={as_of}"), Some(TOKEN));
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list["count"].as_u64(), Some(lines.len() as u64));

    // The request log names route templates, never a patient id.
    let _ = api.0.kill();
    let _ = api.0.wait();
    let mut log = String::new();
    if let Some(mut e) = api.0.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    assert!(log.contains("/patients/{id}"), "request log by route template: {log}");
    assert!(!log.contains(&first_id), "a patient id reached the log");
    assert!(!log.contains(TOKEN), "the token reached the log");
}

/// A minimal HTTP/1.1 GET returning the status line's code and the raw head (for headers).
fn http_head(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let head = raw.split_once("\r\n\r\n").map(|(h, _)| h.to_owned()).unwrap_or(raw);
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, head)
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `registry serve` with `REGISTRY_API_TOKENS`: the API and dashboard on `--http`, over the live
/// projection. Published events show up in `/patients/{id}` exactly as `registry labels` prints
/// them for an import of the same file; the dashboard answers with the token (bearer or the
/// login cookie), `/metrics` needs it; SIGTERM stops serve with exit 0.
#[test]
fn registry_serve_with_api_tokens_serves_the_api_and_dashboard_on_the_live_projection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The reference: the same file imported, then `registry labels`.
    let as_of = "2018-05-31";
    let (file, n_events, lines) = imported_cohort(tmp.path(), &tmp.path().join("import"), 8, 11, as_of);
    assert!(lines.len() >= 6);

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let log_path = tmp.path().join("serve.log");
    let child = registry()
        .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--data"])
        .arg(tmp.path().join("live"))
        .env("REGISTRY_API_TOKENS", format!("{TOKEN}=*"))
        .env_remove("REGISTRY_API_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("serve starts");
    let mut serve = Api(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(serve.0.try_wait().expect("wait").is_none(), "serve exited: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && http_get(port, "/healthz", None).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "registry serve did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&log_path).expect("log");
    let url = log
        .split_whitespace()
        .find(|w| w.starts_with("nats://"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .expect("serve names its nats URL");
    let publish = registry().arg("publish").arg(&file).arg("--nats").arg(&url).output().expect("publish");
    assert!(publish.status.success(), "{}", String::from_utf8_lossy(&publish.stderr));

    // Without a token: the API answers 401 (it is mounted, not the plain operations endpoint).
    assert_eq!(http_get(port, "/metrics", None).0, 401);
    assert_eq!(http_get(port, "/", None).0, 401);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, m) = http_get(port, "/metrics", Some(TOKEN));
        assert_eq!(status, 200);
        if metric(&m, "registry_projected_events") == Some(n_events) && metric(&m, "registry_projection_lag_events") == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "not every event projected: {m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("labels JSON");
        let id = v["patient_id"].as_str().expect("id");
        let (status, body) = http_get(port, &format!("/patients/{id}?as_of={as_of}"), Some(TOKEN));
        assert_eq!(status, 200);
        assert_eq!(body, format!("{line}\n"), "{id}");
        let (status, timeline) = http_get(port, &format!("/patients/{id}/timeline?as_of={as_of}"), Some(TOKEN));
        assert_eq!(status, 200);
        let timeline: serde_json::Value = serde_json::from_str(&timeline).expect("timeline JSON");
        assert_eq!(timeline["labels"], v, "{id}");
    }
    // The dashboard: with the bearer token, and through the sign-in link's cookie.
    let (status, home) = http_get(port, &format!("/?as_of={as_of}"), Some(TOKEN));
    assert_eq!(status, 200);
    assert!(home.contains("<svg") && home.contains("/ui/patients/"), "overview with figures and patient links");
    let (status, head) = http_head(port, &format!("/ui/login?token={TOKEN}"));
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "GET /ui/patients HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 200"), "the cookie signs in: {}", raw.lines().next().unwrap_or_default());
    assert_eq!(http_head(port, "/ui/login?token=not-a-token-of-this-registry").0, 401);

    // A site sends an event the contract refuses: the live API lists the ingest's rejection.
    let bad = serde_json::json!({
        "event_id": "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b61", "event_type": "followup.recorded", "schema_version": 1,
        "patient_id": "P001", "site_id": "fuscc", "occurred_on": "2016-05-03",
        "recorded_at": "2016-05-04T09:12:00Z", "supersedes": null, "payload": {"status": "dancing"}
    })
    .to_string();
    let bad_file = tmp.path().join("bad.ndjson");
    std::fs::write(&bad_file, format!("{bad}\n")).expect("write");
    let publish = registry().arg("publish").arg(&bad_file).arg("--nats").arg(&url).output().expect("publish");
    assert!(publish.status.success(), "{}", String::from_utf8_lossy(&publish.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let (status, body) = http_get(port, "/rejections", Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("rejections JSON");
        if v["count"] == 1 {
            break v["rejections"][0].clone();
        }
        assert!(Instant::now() < deadline, "the rejection is not listed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(listed["source"], "registry.events.fuscc.followup.recorded");
    assert_eq!((listed["site"].as_str(), listed["reason"].as_str()), (Some("fuscc"), Some("schema")));
    assert_eq!(listed["raw"], bad.as_str());
    // Its fix sent at once under the same event_id falls in EVENTS' duplicate window: the server
    // drops it, and the feeder says so rather than counting it as published.
    std::fs::write(&bad_file, format!("{}\n", bad.replace("dancing", "alive"))).expect("write");
    let again = registry().arg("publish").arg(&bad_file).arg("--nats").arg(&url).output().expect("publish");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).expect("summary");
    assert_eq!((summary["published"].as_u64(), summary["duplicate"].as_u64()), (Some(0), Some(1)), "{summary}");
    let hint = String::from_utf8_lossy(&again.stderr);
    assert!(hint.contains("duplicate window (120 s)") && hint.contains("send it again after the window"), "{hint}");

    // SIGTERM: serve stops cleanly.
    let pid = serve.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = serve.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "serve exits 0: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(!log.contains(TOKEN), "the token reached the log");

    // Stopped, its data directory answers `registry rejections` the same.
    let out = registry().arg("rejections").arg("--data").arg(tmp.path().join("live")).output().expect("rejections");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(offline, listed);
}
