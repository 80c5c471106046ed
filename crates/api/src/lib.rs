//! `registry-api`: the HTTP API and the dashboard (`interfaces.md`, "HTTP API").
//!
//! Routes ([`ROUTES`], documented in `/openapi.json` and `docs/api.md`): the patients' labels, a
//! patient's timeline, the cohort report and ADTTE export, the alert feed, health, readiness and
//! Prometheus metrics, and a server-rendered dashboard (`/`, `/ui/…`). Every route takes the view
//! (`as_of`, `known_at`); every route but `/healthz` and `/readyz` needs a bearer token, scoped to
//! the whole registry or to one site.
//!
//! Architecture invariants:
//! - The API reads through [`RegistryView`]; it never writes to the store.
//! - No patient identifier and no token reaches a log line: requests are logged by route template
//!   (`/patients/{id}`), never by path or query.
//! - A site-scoped token sees only its site's patients: others are 404, left out of lists, alerts
//!   and the report (computed on the visible subset).
//!
//! Code map: [`auth`] (tokens, scopes, `Secret`), [`source`] (the data trait and its projector
//! implementation), `handlers` (JSON routes), `dashboard` (HTML + SVG), [`timeline`],
//! `openapi`, `guard` (rate limit, request log, HTTP counters).

pub mod auth;
mod dashboard;
mod guard;
mod handlers;
pub mod openapi;
mod report;
pub mod source;
pub mod timeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

pub use auth::{Scope, Secret, Tokens};
pub use openapi::OPENAPI_JSON;
pub use source::{ProjectorSource, RegistryView};

/// Limits and tokens of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bearer tokens and their scopes.
    pub tokens: Tokens,
    /// Largest request body accepted (every route is a GET; bodies are refused above this). Default 16 KiB.
    pub max_body_bytes: usize,
    /// Sustained requests per second per client address. Default 20.
    pub rate_per_sec: f64,
    /// Burst size per client address. Default 60.
    pub rate_burst: f64,
    /// Most alerts one `/alerts` answer returns. Default 1000 (`limit` may ask for fewer).
    pub max_alerts: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { tokens: Tokens::default(), max_body_bytes: 16 * 1024, rate_per_sec: 20.0, rate_burst: 60.0, max_alerts: 1000 }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) source: Arc<dyn RegistryView>,
    pub(crate) cfg: Arc<ApiConfig>,
    pub(crate) limiter: Arc<guard::RateLimiter>,
    pub(crate) http: Arc<guard::HttpCounters>,
    pub(crate) labels_cache: Arc<handlers::LabelsCache>,
}

/// Every route: (path template, what it serves). The router is built from this list and the
/// OpenAPI document must list exactly these paths (tested).
pub const ROUTES: &[&str] = &[
    "/patients",
    "/patients/{id}",
    "/patients/{id}/timeline",
    "/cohort/report",
    "/cohort/adtte.csv",
    "/alerts",
    "/rejections",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/",
    "/ui/patients",
    "/ui/patients/{id}",
    "/ui/login",
    "/ui/logout",
];

/// Routes that need no token.
pub(crate) const PUBLIC_ROUTES: &[&str] = &["/healthz", "/readyz", "/ui/login"];

fn handler_for(path: &str) -> Option<MethodRouter<AppState>> {
    Some(match path {
        "/patients" => get(handlers::patients),
        "/patients/{id}" => get(handlers::patient),
        "/patients/{id}/timeline" => get(handlers::timeline),
        "/cohort/report" => get(handlers::cohort_report),
        "/cohort/adtte.csv" => get(handlers::adtte),
        "/alerts" => get(handlers::alerts),
        "/rejections" => get(handlers::rejections),
        "/healthz" => get(handlers::healthz),
        "/readyz" => get(handlers::readyz),
        "/metrics" => get(handlers::metrics),
        "/openapi.json" => get(openapi::document),
        "/" => get(dashboard::overview),
        "/ui/patients" => get(dashboard::patient_list),
        "/ui/patients/{id}" => get(dashboard::patient_page),
        "/ui/login" => get(dashboard::login),
        "/ui/logout" => get(dashboard::logout),
        _ => return None,
    })
}

/// Header set on answers of no route, so tests can tell "no such route" from a handler's 404.
pub const UNMATCHED_HEADER: &str = "x-registry-unmatched";

async fn unmatched() -> impl IntoResponse {
    let mut r = (StatusCode::NOT_FOUND, "no such route\n").into_response();
    r.headers_mut().insert(UNMATCHED_HEADER, HeaderValue::from_static("1"));
    r
}

/// The API and dashboard as an axum router.
pub fn router(source: Arc<dyn RegistryView>, cfg: ApiConfig) -> Router {
    let state = AppState {
        source,
        limiter: Arc::new(guard::RateLimiter::new(cfg.rate_per_sec, cfg.rate_burst)),
        http: Arc::new(guard::HttpCounters::default()),
        labels_cache: Arc::new(handlers::LabelsCache::default()),
        cfg: Arc::new(cfg),
    };
    let mut r: Router<AppState> = Router::new();
    for path in ROUTES {
        if let Some(h) = handler_for(path) {
            r = r.route(path, h);
        }
    }
    let max_body = state.cfg.max_body_bytes;
    // Layers run outermost last-added first: log/count → rate limit → body limit → auth → handler.
    r.fallback(unmatched)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::authenticate))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::rate_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::observe))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "API listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}
