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

#[test]
fn registry_api_serves_the_labels_registry_labels_prints() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let synth = registry().args(["synth", "--patients", "12", "--seed", "7"]).output().expect("synth");
    assert!(synth.status.success());
    let file = tmp.path().join("cohort.ndjson");
    std::fs::write(&file, &synth.stdout).expect("write");
    let import = registry().arg("import").arg(&file).arg("--data").arg(&data).output().expect("import");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let as_of = "2018-05-31";
    let labels = registry().args(["labels", "--as-of", as_of, "--data"]).arg(&data).output().expect("labels");
    let lines: Vec<String> = String::from_utf8_lossy(&labels.stdout).lines().map(str::to_owned).collect();
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
