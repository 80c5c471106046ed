//! registry-testsupport: a real `nats-server` with JetStream for tests.
//!
//! Owns the life cycle of one child process per [`NatsServer`]: a free client port, a free
//! monitoring port, a private temporary directory (JetStream store, config file, server log),
//! readiness (the monitoring `/healthz` endpoint answers 200 only once JetStream is up), and
//! clean-up (`kill` + `wait` on [`Drop`], so no server and no zombie outlives its test).
//!
//! Fault tests use [`NatsServer::stop`] and [`NatsServer::restart`]: the server comes back on the
//! same port with the same store directory, as after a crash (`stop` is a SIGKILL, the harder case
//! for durability).
//!
//! Where the binary comes from, first match wins: `$REGISTRY_NATS_SERVER`; `.tools/bin/nats-server`
//! under the workspace root (found by walking up from `CARGO_MANIFEST_DIR` or the current
//! directory); `nats-server` on `PATH`. `scripts/setup` installs the pinned one into `.tools/`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Environment variable naming the `nats-server` binary to use, overriding every other lookup.
pub const NATS_SERVER_ENV: &str = "REGISTRY_NATS_SERVER";

/// How long a server gets to become ready (JetStream included) before start-up fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How many times start-up is tried with fresh ports, in case another process grabbed a port
/// between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 3;

/// The store directory inside the server's temporary directory (nats-server keeps its files
/// under `<store>/jetstream/`).
const STORE_SUBDIR: &str = "store";

/// A running `nats-server -js` on 127.0.0.1, killed and reaped on drop.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    monitor_port: u16,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    // Declared last: dropped after the child has been killed (Drop runs before field drops).
    dir: tempfile::TempDir,
}

/// Options for starting a [`NatsServer`]: an optional config file and extra environment
/// variables for the child (the config may reference them as `$NAME`).
#[derive(Debug, Default, Clone)]
pub struct NatsServerBuilder {
    config: Option<String>,
    config_file: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl NatsServerBuilder {
    /// Starts the server from this config text. The port, monitoring port, listen address and
    /// JetStream store directory are injected on the command line (`-p`, `-m`, `-a`, `-sd`,
    /// `-js`), which override whatever the file says.
    pub fn config(mut self, conf: &str) -> Self {
        self.config = Some(conf.to_owned());
        self
    }

    /// Starts the server from an existing config file, used in place so that its `include`s
    /// resolve relative to it (e.g. `deploy/nats-sites.conf`). Ports and store directory are
    /// injected as with [`NatsServerBuilder::config`]. Overrides `config`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Sets an environment variable for the server process (e.g. a password the config reads
    /// as `$SITE_FUSCC_PASSWORD`). The test process's own environment is not touched.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Launches the server and waits until it accepts connections with JetStream ready.
    pub fn start(self) -> anyhow::Result<NatsServer> {
        let binary = find_nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("registry-nats-")
            .tempdir()
            .context("creating the server's temporary directory")?;
        let store_dir = dir.path().join(STORE_SUBDIR);
        std::fs::create_dir_all(&store_dir).context("creating the JetStream store directory")?;
        // nats-server refuses `-sd` next to a config that sets `store_dir` ("Duplicate
        // 'store_dir'"), so a given config is wrapped: the wrapper includes it, then sets the
        // JetStream block (the later key wins). Includes must be relative paths, resolved from
        // the including file's directory.
        let included = match (&self.config_file, &self.config) {
            (Some(path), _) => {
                let path = path
                    .canonicalize()
                    .with_context(|| format!("config file {} not found", path.display()))?;
                Some(path)
            }
            (None, Some(text)) => {
                let path = dir.path().join("user.conf");
                std::fs::write(&path, text)
                    .with_context(|| format!("writing config file {}", path.display()))?;
                Some(path)
            }
            (None, None) => None,
        };
        let config = match included {
            Some(included) => {
                let base = dir
                    .path()
                    .canonicalize()
                    .context("resolving the temporary directory")?;
                let wrapper = format!(
                    "# Written by registry-testsupport: the config under test, then this\n\
                     # server's own JetStream store directory.\n\
                     include \"{}\"\n\
                     jetstream {{\n  store_dir: \"{}\"\n}}\n",
                    relative_path(&base, &included).display(),
                    store_dir.display()
                );
                let path = dir.path().join("nats.conf");
                std::fs::write(&path, wrapper)
                    .with_context(|| format!("writing config file {}", path.display()))?;
                Some(path)
            }
            None => None,
        };

        let mut server = NatsServer {
            binary,
            port: 0,
            monitor_port: 0,
            config,
            env: self.env,
            child: None,
            dir,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            server.monitor_port = free_port()?;
            if server.monitor_port == server.port {
                continue;
            }
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(err) => {
                    server.kill_child();
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
    }
}

impl NatsServer {
    /// Starts a plain JetStream server (no auth) on a free port with its own store directory.
    pub fn start() -> anyhow::Result<NatsServer> {
        NatsServerBuilder::default().start()
    }

    /// Starts a server from the given config text (accounts, users, permissions…); the port and
    /// store directory are injected. Use [`NatsServer::builder`] to also pass env variables.
    pub fn start_with_config(conf: &str) -> anyhow::Result<NatsServer> {
        NatsServerBuilder::default().config(conf).start()
    }

    /// A builder for a server with a config and/or environment variables.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP monitoring port (`/healthz`, `/varz`, `/jsz`).
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// The JetStream store directory (kept across [`NatsServer::restart`]).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join(STORE_SUBDIR)
    }

    /// The server's log file (stdout and stderr of the child), useful in failure messages.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server log so far; empty if it cannot be read.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Whether the child process is currently running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server (SIGKILL, like a crash) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        self.kill_child();
    }

    /// Stops the server if running, then starts it again on the same port with the same store
    /// directory and waits until JetStream is ready (streams recovered from disk).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill_child();
        // The port was ours a moment ago; retry briefly in case the OS still holds it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() < deadline => {
                    self.kill_child();
                    tracing_free_note(&format!("restart attempt failed, retrying: {err:#}"));
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let log_path = self.log_file();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening server log {}", log_path.display()))?;
        let log_err = log.try_clone().context("cloning the server log handle")?;

        let mut cmd = Command::new(&self.binary);
        match &self.config {
            // The wrapper config enables JetStream with our store directory.
            Some(config) => cmd.arg("-c").arg(config),
            None => cmd.arg("-js").arg("-sd").arg(self.store_dir()),
        };
        cmd.arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-m")
            .arg(self.monitor_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    bail!(
                        "nats-server exited during start-up ({status}); log:\n{}",
                        self.log()
                    );
                }
            }
            if healthz_ok(self.monitor_port) && port_accepts(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "nats-server on port {} not ready after {:?}; log:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean the process already exited; wait() still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill_child();
    }
}

/// Start-up notes go to stderr (captured by the test harness); this crate has no tracing dep.
fn tracing_free_note(msg: &str) {
    eprintln!("registry-testsupport: {msg}");
}

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing a free port")?;
    Ok(listener.local_addr().context("reading probed port")?.port())
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// `GET /healthz` on the monitoring port: 200 means the server, and JetStream, are ready.
fn healthz_ok(monitor_port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, monitor_port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"))
}

/// Finds the `nats-server` binary: `$REGISTRY_NATS_SERVER`, then `.tools/bin/nats-server` in an
/// ancestor of `CARGO_MANIFEST_DIR` / this crate / the current directory, then `PATH`.
pub fn find_nats_server() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{NATS_SERVER_ENV}={} does not name a file; unset it or point it at nats-server",
            path.display()
        );
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(dir));
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    if let Ok(dir) = std::env::current_dir() {
        starts.push(dir);
    }
    for start in &starts {
        if let Some(found) = find_in_ancestors(start, Path::new(".tools/bin/nats-server")) {
            return Ok(found);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "nats-server not found: run scripts/setup (installs the pinned one into .tools/bin/), \
         or set {NATS_SERVER_ENV} to its path, or put nats-server on PATH"
    )
}

/// `target` relative to the directory `base` (both absolute): `../..` up to the root, then the
/// target's path. Not the shortest path, but always right for nats-server's relative includes.
fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let mut relative = PathBuf::new();
    for _ in base.components().skip(1) {
        relative.push("..");
    }
    relative.join(target.strip_prefix("/").unwrap_or(target))
}

fn find_in_ancestors(start: &Path, relative: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(relative))
        .find(|candidate| candidate.is_file())
}

/// The workspace root: the nearest ancestor of this crate holding a `Cargo.toml` with a
/// `[workspace]` table. Tests use it to read files such as `deploy/nats-sites.conf`.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|line| line.trim() == "[workspace]") {
                return Ok(dir.to_path_buf());
            }
        }
    }
    bail!("no workspace Cargo.toml above {}", start.display())
}
