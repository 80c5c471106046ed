//! `registry api --data DIR --http ADDR [--config FILE]`: the HTTP API and dashboard alone, over a
//! data directory that no other process has open (sled is one process's database: stop
//! `registry serve` / `registry import` on DIR first). `registry serve` mounts the same router
//! over its projector's handle instead.
//!
//! Tokens: `--config FILE` (JSON `{"tokens":[{"token":"…","scope":"*"}]}`; or the file named by
//! `REGISTRY_API_CONFIG`) and/or `REGISTRY_API_TOKENS=token1=*,token2=fuscc`. No token configured
//! is a usage error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use registry_api::{ApiConfig, ProjectorSource, Tokens};
use registry_domain::config::Config;
use registry_projector::Projector;

#[derive(clap::Args)]
pub(crate) struct ApiArgs {
    /// Data directory of the registry: DIR/store (as `registry import`), or a `registry serve`
    /// data directory (its projector store, DIR/projector/store). No other process may have it open.
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// API configuration file (JSON): tokens and their scopes.
    #[arg(long, env = "REGISTRY_API_CONFIG")]
    config: Option<PathBuf>,
    /// Sustained requests per second per client address (token bucket).
    #[arg(long, default_value_t = ApiConfig::default().rate_per_sec)]
    rate_per_sec: f64,
    /// Burst size per client address.
    #[arg(long, default_value_t = ApiConfig::default().rate_burst)]
    rate_burst: f64,
}

/// The tokens of `--config` and `REGISTRY_API_TOKENS` (both may be given).
pub(crate) fn load_tokens(config: Option<&Path>) -> anyhow::Result<Tokens> {
    let mut tokens = Tokens::default();
    if let Some(path) = config {
        tokens.extend(Tokens::from_file(path)?);
    }
    if let Ok(env) = std::env::var("REGISTRY_API_TOKENS") {
        tokens.extend(Tokens::parse_env(&env).context("REGISTRY_API_TOKENS")?);
    }
    if tokens.is_empty() {
        anyhow::bail!(registry_api::auth::TokenConfigError::Empty);
    }
    Ok(tokens)
}

/// `DIR/store` (an import's or a service's data directory), else `DIR/projector/store` (the
/// projector's store inside a `registry serve` data directory).
fn store_dir(data: &Path) -> PathBuf {
    let serve_layout = data.join("projector").join("store");
    if !data.join("store").exists() && serve_layout.exists() {
        serve_layout
    } else {
        data.join("store")
    }
}

/// The API router for `registry serve`, over the projector it runs (same process, same sled
/// handle) with the ingest counters on `/metrics` and the ingest's rejections on `/rejections`. `None` when no API token is configured
/// (`REGISTRY_API_TOKENS` or a `REGISTRY_API_CONFIG` file): then `serve` keeps the plain
/// operations endpoint.
pub(crate) fn serve_router(
    projector: Projector,
    ingest_store: registry_store::Store,
    metrics: Arc<registry_ingest::IngestMetrics>,
) -> anyhow::Result<Option<axum::Router>> {
    let config = std::env::var_os("REGISTRY_API_CONFIG").map(PathBuf::from);
    if config.is_none() && std::env::var_os("REGISTRY_API_TOKENS").is_none() {
        tracing::warn!("no API token configured (REGISTRY_API_TOKENS / REGISTRY_API_CONFIG): serving health and metrics only");
        return Ok(None);
    }
    let tokens = load_tokens(config.as_deref())?;
    let source = Arc::new(
        ProjectorSource::new(projector, Config::default()).with_ingest_metrics(metrics).with_rejections(ingest_store),
    );
    Ok(Some(registry_api::router(source, ApiConfig { tokens, ..ApiConfig::default() })))
}

/// Serves `app` on `addr` until `shutdown`.
pub(crate) async fn serve_on(
    addr: SocketAddr,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    registry_api::serve(listener, app, shutdown).await.context("API server")
}

pub(crate) fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let tokens = load_tokens(args.config.as_deref())?;
    let dir = store_dir(&args.data);
    let store = registry_store::Store::open(&dir)
        .with_context(|| format!("cannot open the store in {} (is another registry process using it?)", dir.display()))?;
    // The rejections: in the same store after an import; the ingest's beside a serve layout's
    // projector store (no process holds it while `registry api` runs alone).
    let ingest_dir = args.data.join("ingest").join("store");
    let rejections = if dir.ends_with(Path::new("projector/store")) && ingest_dir.exists() {
        registry_store::Store::open_lazy(&ingest_dir)
            .with_context(|| format!("cannot open the ingest's store in {} (is a service using it?)", ingest_dir.display()))?
    } else {
        store.clone()
    };
    let projector = Projector::new(store, Config::default());
    let source = Arc::new(ProjectorSource::new(projector, Config::default()).with_rejections(rejections));
    let app = registry_api::router(
        source,
        ApiConfig { tokens, rate_per_sec: args.rate_per_sec, rate_burst: args.rate_burst, ..ApiConfig::default() },
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(args.http).await.with_context(|| format!("cannot listen on {}", args.http))?;
        eprintln!("registry api: http://{} (data {})", listener.local_addr()?, dir.display());
        let shutdown = async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term => {},
            }
        };
        registry_api::serve(listener, app, shutdown).await.context("API server")?;
        Ok(ExitCode::SUCCESS)
    })
}
