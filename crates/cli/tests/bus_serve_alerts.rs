//! The two ends a user touches: `registry serve` (one process, its own nats-server from .tools)
//! answers /healthz, projects what is published to it and stops cleanly on SIGTERM, taking its
//! nats-server with it; `registry alerts --webhook URL` delivers every alert to an HTTP receiver
//! with `Idempotency-Key: <alert_id>`, retrying when the receiver first answers 500.

mod bus_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_support::*;
use registry_testsupport::NatsServer;

/// `GET path` on 127.0.0.1:port with plain HTTP/1.1: (status, body), or `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Child processes of `pid` as (pid, command name), from /proc.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map(|(_, c)| c.to_owned()).unwrap_or_default();
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push((child, comm));
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').is_some_and(|(_, t)| t.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Kills a leftover nats-server if the test fails half-way (serve killed -9 would orphan it).
struct KillOnDrop(Vec<u32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        }
    }
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

#[test]
fn serve_answers_healthz_projects_and_stops_cleanly_on_sigterm_with_its_nats_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let http = free_port();
    let mut serve = Service::new(
        "serve",
        vec!["serve".into(), "--data".into(), data.clone().into(), "--http".into(), format!("127.0.0.1:{http}").into()],
        tmp.path(),
    );
    serve.start();
    poll_until(
        "/healthz to answer 200",
        Duration::from_secs(60),
        || {
            serve.assert_running();
            http_get(http, "/healthz")
        },
        |r| r.as_ref().filter(|(status, _)| *status == 200).map(|_| ()),
    );
    let nats_children: Vec<u32> =
        children_of(serve.pid()).into_iter().filter(|(_, comm)| comm == "nats-server").map(|(p, _)| p).collect();
    assert_eq!(nats_children.len(), 1, "serve runs one nats-server of its own");
    let _guard = KillOnDrop(nats_children.clone());
    // Its server forces the stream files to disk every second, not nats-server's 2 minutes.
    let conf = std::fs::read_to_string(data.join("nats-server.conf")).expect("serve writes DATA/nats-server.conf");
    assert!(conf.contains("sync_interval: 1s"), "the local server's configuration: {conf}");

    // It works: what is published to its server is ingested and projected.
    let log = serve.log_text();
    let url = log
        .split_whitespace()
        .find(|w| w.starts_with("nats://"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .expect("serve names its nats URL");
    let lines = synth_lines(30, 5, None);
    let file = tmp.path().join("events.ndjson");
    write_lines(&file, &lines);
    let reference = import(&file, &tmp.path().join("import"));
    let summary = publisher_summary(publisher(&file, &url), Duration::from_secs(60));
    assert_eq!(summary["published"].as_u64(), Some(lines.len() as u64), "{summary}");
    poll_until(
        "every event ingested and projected (/metrics)",
        Duration::from_secs(120),
        || {
            serve.assert_running();
            http_get(http, "/metrics").map(|(_, body)| body).unwrap_or_default()
        },
        |m| {
            // Lag 0 alone is also true before the projector has received the last events from
            // ACCEPTED: wait until its labels include every event.
            (metric(m, "registry_events_ingested_total") == Some(lines.len() as u64)
                && metric(m, "registry_projected_events") == Some(lines.len() as u64)
                && metric(m, "registry_projection_lag_events") == Some(0))
            .then_some(())
        },
    );

    let status = serve.sigterm(Duration::from_secs(30));
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}; log:\n{}", serve.log_tail());
    for pid in &nats_children {
        assert!(!alive(*pid), "the nats-server child {pid} is gone after serve stopped");
    }
    wait_success(reference, "registry import", Duration::from_secs(60));
    assert_same_labels(&labels(&data.join("projector")), &labels(&tmp.path().join("import")));
}

#[test]
fn ctrl_c_in_a_terminal_stops_serve_cleanly_and_leaves_no_nats_server_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let http = free_port();
    let mut serve = Service::new(
        "serve",
        vec!["serve".into(), "--data".into(), data.into(), "--http".into(), format!("127.0.0.1:{http}").into()],
        tmp.path(),
    )
    .in_own_process_group();
    serve.start();
    poll_until(
        "/healthz to answer 200",
        Duration::from_secs(60),
        || {
            serve.assert_running();
            http_get(http, "/healthz")
        },
        |r| r.as_ref().filter(|(status, _)| *status == 200).map(|_| ()),
    );
    let nats: Vec<u32> = children_of(serve.pid()).into_iter().filter(|(_, c)| c == "nats-server").map(|(p, _)| p).collect();
    assert_eq!(nats.len(), 1);
    let _guard = KillOnDrop(nats.clone());
    // Ctrl-C: SIGINT to the terminal's foreground process group.
    serve.signal_group("INT");
    let status = serve.wait(Duration::from_secs(30));
    assert!(status.success(), "serve exits 0 on Ctrl-C, got {status}; log:\n{}", serve.log_tail());
    assert!(!alive(nats[0]), "its nats-server is gone");
}

#[derive(Default)]
struct Receiver {
    /// Every request: (Idempotency-Key, alert_id in the body, status answered).
    requests: Vec<(String, String, u16)>,
    /// Keys refused once already.
    refused: BTreeSet<String>,
}

/// An HTTP receiver (axum, on its own thread): the first request of each of the first three
/// alert ids is answered 500, everything else 200.
fn start_receiver() -> (SocketAddr, Arc<Mutex<Receiver>>) {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    let state = Arc::new(Mutex::new(Receiver::default()));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let shared = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async move {
            async fn hook(
                State(s): State<Arc<Mutex<Receiver>>>,
                headers: HeaderMap,
                body: axum::body::Bytes,
            ) -> StatusCode {
                let key = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let alert_id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["alert_id"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut r = s.lock().expect("receiver state");
                let status = if r.refused.len() < 3 && !r.refused.contains(&key) {
                    r.refused.insert(key.clone());
                    500
                } else {
                    200
                };
                r.requests.push((key, alert_id, status));
                StatusCode::from_u16(status).expect("status")
            }
            let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(shared);
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, app).await.expect("receiver serves");
        });
    });
    (addr, state)
}

#[test]
fn alerts_bridge_delivers_every_alert_to_the_webhook_with_its_idempotency_key_and_retries_after_500() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (addr, receiver) = start_receiver();
    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let mut ingest = Service::ingest(&url, &tmp.path().join("ingest"), tmp.path());
    let mut projector = Service::projector(&url, &tmp.path().join("projector"), tmp.path());
    let mut bridge = Service::new(
        "alerts",
        vec!["alerts".into(), "--nats".into(), url.clone().into(), "--webhook".into(), format!("http://{addr}/hook").into()],
        tmp.path(),
    );
    ingest.start();
    projector.start();
    bridge.start();
    let bus = Bus::connect(&url);

    let lines = synth_lines(25, 8, None);
    let file = tmp.path().join("events.ndjson");
    write_lines(&file, &lines);
    let summary = publisher_summary(publisher(&file, &url), Duration::from_secs(60));
    assert_eq!(summary["failed"], 0, "{summary}");
    wait_pipeline_drained(&bus, lines.len() as u64, Duration::from_secs(120), &mut [&mut ingest, &mut projector]);
    let alert_ids: BTreeSet<String> = bus.read_all("ALERTS").into_iter().filter_map(|m| m.msg_id).collect();
    assert!(alert_ids.len() >= 5, "the cohort raises alerts ({})", alert_ids.len());

    let delivered = poll_until(
        "every alert delivered (2xx) to the webhook",
        Duration::from_secs(120),
        || {
            bridge.assert_running();
            let r = receiver.lock().expect("receiver state");
            r.requests.iter().filter(|(_, _, st)| *st == 200).map(|(k, _, _)| k.clone()).collect::<BTreeSet<String>>()
        },
        |ok| (*ok == alert_ids).then(|| ok.clone()),
    );
    assert_eq!(delivered, alert_ids);
    let r = receiver.lock().expect("receiver state");
    assert!(r.requests.iter().all(|(key, body_id, _)| key == body_id), "Idempotency-Key is the alert_id");
    assert_eq!(r.refused.len(), 3);
    let mut per_key: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for (key, _, status) in &r.requests {
        per_key.entry(key).or_default().push(*status);
    }
    for key in &r.refused {
        assert_eq!(per_key[key.as_str()], vec![500, 200], "{key}: refused once, then retried and delivered");
    }
    drop(r);
    for service in [&mut bridge, &mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stops cleanly: {status}", service.name);
    }
}
