//! Shared harness of the live-bus tests (`tests/bus_*.rs`): a real nats-server per test
//! (registry-testsupport), the real `registry` binary as child processes (ingest, projector,
//! publish, serve, alerts), and the checks every fault test ends with.
//!
//! Waiting is always "poll a condition until a deadline", never a fixed sleep for correctness.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use registry_bus::BusConfig;
use registry_store::Store;

/// The labels view date of the tests: the ni2019 profile's data cut-off
/// (`registry_domain::synth::Profile::Ni2019.data_cutoff()`), after the cohort's last event.
pub(crate) const AS_OF: &str = "2018-05-31";

/// Redelivery delay the tests give the services (`--ack-wait`): a killed service's
/// unacknowledged batch comes back after this, so it bounds the cost of each kill.
pub(crate) const TEST_ACK_WAIT_SECS: &str = "3";

pub(crate) fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

/// A small deterministic generator (xorshift64), so kill moments are reproducible.
pub(crate) struct Rng(pub u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Fisher–Yates.
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// `registry synth --patients N --seed S`, first `take` lines (all when `None`).
pub(crate) fn synth_lines(patients: usize, seed: u64, take: Option<usize>) -> Vec<String> {
    let out = registry()
        .args(["synth", "--patients", &patients.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("run registry synth");
    assert!(out.status.success(), "synth failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("synth writes UTF-8");
    let lines: Vec<String> = text.lines().take(take.unwrap_or(usize::MAX)).map(str::to_owned).collect();
    if let Some(want) = take {
        assert_eq!(lines.len(), want, "synth produced fewer than {want} events");
    }
    lines
}

pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write events file");
}

pub(crate) fn event_id(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("line is JSON");
    v["event_id"].as_str().expect("event_id").to_owned()
}

/// `registry import FILE --data DIR` (the reference: the same events without a bus).
pub(crate) fn import(file: &Path, data: &Path) -> Child {
    registry()
        .arg("import")
        .arg(file)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn registry import")
}

pub(crate) fn wait_success(mut child: Child, what: &str, within: Duration) {
    let status = wait_exit(&mut child, within).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {within:?}")
    });
    assert!(status.success(), "{what} failed: {status}");
}

/// Polls `child` until it exits or `within` passes.
pub(crate) fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `registry labels --data DIR --as-of AS_OF`, the bytes it prints.
pub(crate) fn labels(data: &Path) -> Vec<u8> {
    let out = registry()
        .arg("labels")
        .arg("--data")
        .arg(data)
        .args(["--as-of", AS_OF])
        .output()
        .expect("run registry labels");
    assert!(out.status.success(), "labels failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Asserts that two `registry labels` outputs are byte-identical, naming the first difference.
pub(crate) fn assert_same_labels(live: &[u8], reference: &[u8]) {
    if live == reference {
        return;
    }
    let a: Vec<&[u8]> = live.split(|b| *b == b'\n').collect();
    let b: Vec<&[u8]> = reference.split(|b| *b == b'\n').collect();
    let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    panic!(
        "labels differ ({} vs {} lines); first difference at line {}:\n live: {}\n  ref: {}",
        a.len(),
        b.len(),
        first + 1,
        a.get(first).map(|l| String::from_utf8_lossy(l)).unwrap_or_default(),
        b.get(first).map(|l| String::from_utf8_lossy(l)).unwrap_or_default(),
    );
}

/// One service (`registry ingest|project|alerts|serve …`) as a child process that can be
/// killed (-9), restarted with the same arguments, and stopped with SIGTERM.
pub(crate) struct Service {
    pub(crate) name: String,
    args: Vec<OsString>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    own_group: bool,
    pub(crate) starts: u32,
    /// Length of the log file when the current process was started.
    log_len_at_start: u64,
}

impl Service {
    pub(crate) fn new(name: &str, args: Vec<OsString>, log_dir: &Path) -> Service {
        Service {
            name: name.to_owned(),
            args,
            envs: Vec::new(),
            log: log_dir.join(format!("{name}.log")),
            child: None,
            own_group: false,
            starts: 0,
            log_len_at_start: 0,
        }
    }

    /// Starts it as the leader of a process group of its own (as a shell does for a job), so
    /// that a test can signal the whole group like Ctrl-C in a terminal does.
    pub(crate) fn in_own_process_group(mut self) -> Service {
        self.own_group = true;
        self
    }

    /// Sends `signal` (e.g. "INT") to the service's whole process group.
    pub(crate) fn signal_group(&self, signal: &str) {
        assert!(self.own_group, "{} was not started in its own process group", self.name);
        let st = Command::new("kill").arg(format!("-{signal}")).arg("--").arg(format!("-{}", self.pid())).status().expect("run kill");
        assert!(st.success(), "kill -{signal} to the group of {} failed", self.name);
    }

    /// Waits for the exit status (SIGKILL and panic after `within`).
    pub(crate) fn wait(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        match wait_exit(&mut child, within) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within {within:?}; log tail:\n{}", self.name, self.log_tail());
            }
        }
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Service {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `registry ingest --nats URL --data DIR --ack-wait 3`
    pub(crate) fn ingest(url: &str, data: &Path, log_dir: &Path) -> Service {
        let args = vec![
            "ingest".into(),
            "--nats".into(),
            url.into(),
            "--data".into(),
            data.into(),
            "--ack-wait".into(),
            TEST_ACK_WAIT_SECS.into(),
        ];
        Service::new("ingest", args, log_dir)
    }

    /// `registry project --nats URL --data DIR --ack-wait 3`
    pub(crate) fn projector(url: &str, data: &Path, log_dir: &Path) -> Service {
        let args = vec![
            "project".into(),
            "--nats".into(),
            url.into(),
            "--data".into(),
            data.into(),
            "--ack-wait".into(),
            TEST_ACK_WAIT_SECS.into(),
        ];
        Service::new("projector", args, log_dir)
    }

    pub(crate) fn start(&mut self) -> &mut Service {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open service log");
        self.log_len_at_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = registry();
        cmd.args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if self.own_group {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.name)));
        self.starts += 1;
        self
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL (a crash) and reap.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics (with the service log) if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("{} exited unexpectedly ({status}); log tail:\n{}", self.name, self.log_tail());
            }
        } else {
            panic!("{} is not running", self.name);
        }
    }

    /// Waits (up to `within`) until the current process of an ingest or projector service has
    /// logged "<name> running", i.e. has got past start-up, where its SIGINT/SIGTERM handlers
    /// are installed. A signal in the first milliseconds after exec, before `main` installs
    /// them, takes the default action (the process dies; nothing was acknowledged yet) — a test
    /// that restarted a service and stops it at once would see "killed by SIGTERM" (seen once in
    /// bus_kill9: the last kill-and-restart came 3 ms before the drain check passed).
    pub(crate) fn wait_started(&mut self, within: Duration) {
        if self.name != "ingest" && self.name != "projector" {
            return;
        }
        let marker = format!("{} running", self.name);
        let deadline = Instant::now() + within;
        let current = |s: &Service| {
            let bytes = std::fs::read(&s.log).unwrap_or_default();
            let from = usize::try_from(s.log_len_at_start).unwrap_or(0).min(bytes.len());
            String::from_utf8_lossy(&bytes[from..]).contains(&marker)
        };
        while !current(self) {
            self.assert_running();
            if Instant::now() > deadline {
                panic!("{} did not start within {within:?}; log tail:\n{}", self.name, self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for start-up to finish ([`Service::wait_started`]), then SIGTERM, then waits for the
    /// exit status (SIGKILL and panic after `within`).
    pub(crate) fn sigterm(&mut self, within: Duration) -> ExitStatus {
        self.wait_started(within);
        let mut child = self.child.take().expect("running");
        let st = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(st.success(), "kill -TERM {} failed", child.id());
        match wait_exit(&mut child, within) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within {within:?} of SIGTERM; log tail:\n{}", self.name, self.log_tail());
            }
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `registry publish FILE --nats URL` as a child process (stdout: its JSON summary; stderr to
/// FILE.publish.log — not a pipe: during an outage its retry warnings would fill a pipe nobody
/// reads yet and block it).
pub(crate) fn publisher(file: &Path, url: &str) -> Child {
    let log = std::fs::File::create(file.with_extension("publish.log")).expect("publisher log");
    registry()
        .arg("publish")
        .arg(file)
        .args(["--nats", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn registry publish")
}

/// Waits for the publisher and returns its summary (`published`, `duplicate`, `failed`, …).
pub(crate) fn publisher_summary(child: Child, within: Duration) -> serde_json::Value {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(within) {
        Ok(out) => out.expect("publisher output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("registry publish did not finish within {within:?}")
        }
    };
    assert!(out.status.success(), "registry publish failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).expect("publish prints a JSON summary")
}

/// The state of a durable consumer, as the test reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConsumerState {
    pub(crate) num_pending: u64,
    pub(crate) num_ack_pending: u64,
    /// Every message of the stream up to this sequence is acknowledged.
    pub(crate) ack_floor_stream_seq: u64,
    pub(crate) num_redelivered: u64,
}

impl ConsumerState {
    pub(crate) fn drained(&self) -> bool {
        self.num_pending == 0 && self.num_ack_pending == 0
    }
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub(crate) struct StoredMsg {
    pub(crate) seq: u64,
    pub(crate) subject: String,
    pub(crate) msg_id: Option<String>,
    pub(crate) payload: Vec<u8>,
}

enum Query {
    Consumer(String, String, std::sync::mpsc::Sender<Option<ConsumerState>>),
    StreamLen(String, std::sync::mpsc::Sender<Option<u64>>),
    ReadAll(String, std::sync::mpsc::Sender<Result<Vec<StoredMsg>, String>>),
    Publish(String, String, Vec<u8>, std::sync::mpsc::Sender<Result<bool, String>>),
    Request(String, Vec<u8>, std::sync::mpsc::Sender<Result<Vec<u8>, String>>),
    RequestFull(String, Vec<u8>, Duration, std::sync::mpsc::Sender<Result<Reply, String>>),
}

/// A core NATS reply: its headers and payload.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) payload: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// The test's own NATS client (async-nats through registry-bus), on a thread of its own with a
/// current-thread runtime; the test talks to it with blocking calls.
pub(crate) struct Bus {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Query>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bus {
    pub(crate) fn connect(url: &str) -> Bus {
        let mut cfg = BusConfig::with_url(url);
        cfg.client_name = "registry-test".to_owned();
        Bus::connect_with(cfg).expect("test client connects")
    }

    pub(crate) fn connect_with(cfg: BusConfig) -> Result<Bus, String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Query>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            rt.block_on(async move {
                let (client, js) = match registry_bus::connect_jetstream(&cfg).await {
                    Ok(pair) => {
                        let _ = ready_tx.send(Ok(()));
                        pair
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                let mut readers = 0u32;
                while let Some(q) = rx.recv().await {
                    match q {
                        Query::Consumer(stream, name, reply) => {
                            let state = async {
                                let stream = js.get_stream(&stream).await.ok()?;
                                let info = stream.consumer_info(&name).await.ok()?;
                                Some(ConsumerState {
                                    num_pending: info.num_pending,
                                    num_ack_pending: info.num_ack_pending as u64,
                                    ack_floor_stream_seq: info.ack_floor.stream_sequence,
                                    num_redelivered: info.num_redelivered as u64,
                                })
                            }
                            .await;
                            let _ = reply.send(state);
                        }
                        Query::StreamLen(stream, reply) => {
                            let n = async {
                                let mut stream = js.get_stream(&stream).await.ok()?;
                                Some(stream.info().await.ok()?.state.messages)
                            }
                            .await;
                            let _ = reply.send(n);
                        }
                        Query::ReadAll(stream_name, reply) => {
                            readers += 1;
                            let res = async {
                                let mut stream = js.get_stream(&stream_name).await.map_err(|e| e.to_string())?;
                                let total = stream.info().await.map_err(|e| e.to_string())?.state.messages;
                                let consumer = registry_bus::durable_pull_consumer(
                                    &js,
                                    &stream_name,
                                    &format!("test-reader-{readers}"),
                                    "",
                                    Duration::from_secs(600),
                                    -1,
                                )
                                .await
                                .map_err(|e| e.to_string())?;
                                let mut out: BTreeMap<u64, StoredMsg> = BTreeMap::new();
                                let deadline = Instant::now() + Duration::from_secs(120);
                                while (out.len() as u64) < total && Instant::now() < deadline {
                                    let mut batch = consumer
                                        .fetch()
                                        .max_messages(1000)
                                        .expires(Duration::from_millis(500))
                                        .messages()
                                        .await
                                        .map_err(|e| e.to_string())?;
                                    use futures::StreamExt;
                                    while let Some(m) = batch.next().await {
                                        let m = m.map_err(|e| e.to_string())?;
                                        let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
                                        // Acked, or the consumer stops at max_ack_pending (1000).
                                        m.ack().await.map_err(|e| e.to_string())?;
                                        let msg_id = m
                                            .headers
                                            .as_ref()
                                            .and_then(|h| h.get("Nats-Msg-Id"))
                                            .map(|v| v.as_str().to_owned());
                                        out.insert(
                                            seq,
                                            StoredMsg { seq, subject: m.subject.to_string(), msg_id, payload: m.payload.to_vec() },
                                        );
                                    }
                                }
                                if (out.len() as u64) < total {
                                    return Err(format!("read {} of {total} messages of {stream_name}", out.len()));
                                }
                                Ok(out.into_values().collect())
                            }
                            .await;
                            let _ = reply.send(res);
                        }
                        Query::Publish(subject, msg_id, payload, reply) => {
                            let policy = registry_bus::RetryPolicy { attempts: 1, attempt_timeout: Duration::from_secs(3) };
                            let res = registry_bus::publish_with_id_and_policy(&js, &subject, &msg_id, None, payload.into(), policy)
                                .await
                                .map(|o| o.duplicate)
                                .map_err(|e| format!("{e:#}"));
                            let _ = reply.send(res);
                        }
                        Query::Request(subject, payload, reply) => {
                            let res = client
                                .request(subject, payload.into())
                                .await
                                .map(|m| m.payload.to_vec())
                                .map_err(|e| e.to_string());
                            let _ = reply.send(res);
                        }
                        Query::RequestFull(subject, payload, within, reply) => {
                            let res = match tokio::time::timeout(within, client.request(subject, payload.into())).await {
                                Err(_) => Err(format!("no reply within {within:?}")),
                                Ok(Err(e)) => Err(e.to_string()),
                                Ok(Ok(m)) => {
                                    let mut headers = BTreeMap::new();
                                    if let Some(h) = &m.headers {
                                        for (k, v) in h.iter() {
                                            if let Some(v) = v.first() {
                                                headers.insert(k.to_string(), v.as_str().to_owned());
                                            }
                                        }
                                    }
                                    Ok(Reply { headers, payload: m.payload.to_vec() })
                                }
                            };
                            let _ = reply.send(res);
                        }
                    }
                }
            });
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Bus { tx: Some(tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("bus thread died".to_owned()),
        }
    }

    fn ask<T>(&self, make: impl FnOnce(std::sync::mpsc::Sender<T>) -> Query) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(self.tx.as_ref().expect("bus open").send(make(tx)).is_ok(), "bus thread alive");
        rx.recv().expect("bus thread answers")
    }

    /// The consumer's state, `None` while it (or its stream, or the server) is not there.
    pub(crate) fn consumer(&self, stream: &str, name: &str) -> Option<ConsumerState> {
        self.ask(|tx| Query::Consumer(stream.to_owned(), name.to_owned(), tx))
    }

    /// Messages in the stream, `None` while it is not there.
    pub(crate) fn stream_len(&self, stream: &str) -> Option<u64> {
        self.ask(|tx| Query::StreamLen(stream.to_owned(), tx))
    }

    /// Every message of the stream, in sequence order (through a fresh durable consumer).
    pub(crate) fn read_all(&self, stream: &str) -> Vec<StoredMsg> {
        self.ask(|tx| Query::ReadAll(stream.to_owned(), tx)).unwrap_or_else(|e| panic!("reading {stream}: {e}"))
    }

    /// One JetStream publish, one attempt; `Ok(duplicate)`.
    pub(crate) fn publish(&self, subject: &str, msg_id: &str, payload: &[u8]) -> Result<bool, String> {
        self.ask(|tx| Query::Publish(subject.to_owned(), msg_id.to_owned(), payload.to_vec(), tx))
    }

    /// A core NATS request with its reply's headers, failing after `within` without a reply.
    pub(crate) fn request_full(&self, subject: &str, payload: &[u8], within: Duration) -> Result<Reply, String> {
        self.ask(|tx| Query::RequestFull(subject.to_owned(), payload.to_vec(), within, tx))
    }

    /// A core NATS request (e.g. to the JetStream API).
    pub(crate) fn request(&self, subject: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.ask(|tx| Query::Request(subject.to_owned(), payload.to_vec(), tx))
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sets the four streams up as the services do at start (`registry_bus::ensure_streams`), with
/// `cfg`'s settings, so a test can publish before any service runs.
pub(crate) fn ensure_streams(cfg: &BusConfig) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let (_client, js) = registry_bus::connect_jetstream(cfg).await.expect("connect");
        registry_bus::ensure_streams(&js, cfg).await.expect("streams");
    });
}

/// Polls `cond` every 50 ms until it returns `Some` or `within` passes (then panics with `what`
/// and the last observation).
pub(crate) fn poll_until<T, O: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut observe: impl FnMut() -> O,
    mut done: impl FnMut(&O) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = observe();
        if let Some(v) = done(&seen) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}; last seen: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until EVENTS holds `events` messages, the `ingest` consumer has acknowledged all of
/// them, and the `projector` consumer on ACCEPTED has nothing pending or unacknowledged.
pub(crate) fn wait_pipeline_drained(bus: &Bus, events: u64, within: Duration, services: &mut [&mut Service]) {
    let deadline = Instant::now() + within;
    loop {
        for s in services.iter_mut() {
            s.assert_running();
        }
        let ev = bus.stream_len("EVENTS");
        let ing = bus.consumer("EVENTS", "ingest");
        let acc = bus.stream_len("ACCEPTED");
        let proj = bus.consumer("ACCEPTED", "projector");
        let done = ev == Some(events)
            && ing.is_some_and(|c| c.drained())
            && proj.is_some_and(|c| c.drained())
            // Nothing left for the projector means every accepted event reached it.
            && acc.is_some();
        if done {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "pipeline not drained after {within:?}: EVENTS {ev:?}, ingest {ing:?}, ACCEPTED {acc:?}, projector {proj:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end-of-run checks shared by the fault tests, after the services stopped:
/// - labels of the projector's store equal, byte for byte, those of `registry import`;
/// - the ingest store holds every event exactly once;
/// - every alert_id appears exactly once on ALERTS, and they are exactly the alerts the
///   projector raised (nothing lost in its outbox, nothing published twice).
pub(crate) fn check_exactly_once(bus: &Bus, ingest_dir: &Path, projector_dir: &Path, import_dir: &Path, event_ids: &BTreeSet<String>) {
    // Both stores: hash chain intact; the projector's stored labels equal a fresh replay.
    for dir in [ingest_dir, projector_dir] {
        let out = registry().arg("verify").arg("--data").arg(dir).output().expect("run registry verify");
        assert!(out.status.success(), "registry verify --data {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    let live = labels(projector_dir);
    let reference = labels(import_dir);
    assert!(!reference.is_empty(), "the reference import produced labels");
    assert_same_labels(&live, &reference);

    let store = Store::open(&ingest_dir.join("store")).expect("open the ingest store");
    assert_eq!(store.len(), event_ids.len() as u64, "ingest stored every event exactly once");
    for id in event_ids {
        assert!(store.seq_of_event_id(id).expect("lookup").is_some(), "event {id} missing from the ingest store");
    }
    drop(store);

    let alerts = bus.read_all("ALERTS");
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for m in &alerts {
        let id = m.msg_id.clone().unwrap_or_else(|| panic!("alert at seq {} has no Nats-Msg-Id", m.seq));
        let body: serde_json::Value = serde_json::from_slice(&m.payload).expect("alert is JSON");
        assert_eq!(body["alert_id"].as_str(), Some(id.as_str()), "Nats-Msg-Id is the alert_id");
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "alerts published more than once: {:?}", &twice[..twice.len().min(5)]);
    let pstore = Store::open(&projector_dir.join("store")).expect("open the projector store");
    let raised: BTreeSet<String> =
        pstore.alerts_since(i64::MIN, usize::MAX).expect("alert history").into_iter().map(|a| a.alert_id).collect();
    assert!(pstore.alert_outbox_pending(10).expect("outbox").is_empty(), "the projector's alert outbox is empty");
    let published: BTreeSet<String> = seen.into_keys().collect();
    assert!(!raised.is_empty(), "the cohort raises alerts");
    assert_eq!(published.len(), raised.len(), "every raised alert published, nothing else");
    assert!(published == raised, "published alert ids differ from the raised ones");
}

/// The users of deploy/nats-sites.conf (deploy/nats-accounts.conf): password variable, user,
/// the password the tests give it.
pub(crate) const PASSWORDS: [(&str, &str, &str); 8] = [
    ("SITE_FUSCC_PASSWORD", "fuscc", "fuscc-secret"),
    ("SITE_PUMCH_PASSWORD", "pumch", "pumch-secret"),
    ("SITE_DEMO_PASSWORD", "demo", "demo-secret"),
    ("REGISTRY_INGEST_PASSWORD", "ingest", "ingest-secret"),
    ("REGISTRY_PROJECTOR_PASSWORD", "projector", "projector-secret"),
    ("REGISTRY_ALERTS_PASSWORD", "alerts", "alerts-secret"),
    ("REGISTRY_API_PASSWORD", "api", "api-secret"),
    ("REGISTRY_ADMIN_PASSWORD", "admin", "admin-secret"),
];

pub(crate) fn password(user: &str) -> &'static str {
    PASSWORDS.iter().find(|(_, u, _)| *u == user).map(|(_, _, p)| *p).expect("known user")
}

pub(crate) fn deploy_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats-sites.conf")
}

/// A nats-server running deploy/nats-sites.conf with the passwords above.
pub(crate) fn start_sites_server() -> registry_testsupport::NatsServer {
    let mut builder = registry_testsupport::NatsServer::builder().config_file(deploy_conf());
    for (var, _, pw) in PASSWORDS {
        builder = builder.env(var, pw);
    }
    builder.start().expect("nats-server with deploy/nats-sites.conf")
}

/// `registry ingest` and `registry project` against a deploy/nats-sites.conf server, each
/// logged in as its own service user, with their stores in `tmp/ingest` and `tmp/projector`
/// (not started).
pub(crate) fn services_as_users(url: &str, tmp: &Path) -> (Service, Service) {
    let ingest = Service::ingest(url, &tmp.join("ingest"), tmp)
        .env("REGISTRY_NATS_USER", "ingest")
        .env("REGISTRY_NATS_PASSWORD", password("ingest"));
    let projector = Service::projector(url, &tmp.join("projector"), tmp)
        .env("REGISTRY_NATS_USER", "projector")
        .env("REGISTRY_NATS_PASSWORD", password("projector"));
    (ingest, projector)
}

/// A client configuration as `user` of deploy/nats-sites.conf (sites with their inbox prefix).
pub(crate) fn as_user(url: &str, user: &str) -> BusConfig {
    let mut cfg = BusConfig::with_url(url);
    cfg.client_name = format!("registry-test-{user}");
    cfg.credentials = registry_bus::Credentials::UserPassword {
        user: user.to_owned(),
        password: registry_bus::Secret::new(password(user)),
    };
    if ["fuscc", "pumch", "demo"].contains(&user) {
        cfg.inbox_prefix = Some(format!("_INBOX.{user}"));
    }
    cfg
}
