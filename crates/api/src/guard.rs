//! Middleware: the request log and HTTP counters (by route template, never by path), a token
//! bucket per client address, and bearer-token authentication.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Scope;
use crate::{AppState, PUBLIC_ROUTES};

/// The name of the dashboard's session cookie (holds the token; HttpOnly, SameSite=Strict).
pub(crate) const COOKIE: &str = "registry_token";

/// Requests answered, by route template and status, and requests refused by the rate limit.
#[derive(Debug, Default)]
pub(crate) struct HttpCounters {
    by_route: Mutex<BTreeMap<(String, u16), u64>>,
}

impl HttpCounters {
    fn count(&self, route: &str, status: u16) {
        let mut m = self.by_route.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((route.to_owned(), status)).or_default() += 1;
    }

    pub(crate) fn render(&self) -> String {
        let m = self.by_route.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP registry_http_requests_total HTTP requests answered, by route template and status.\n");
        out.push_str("# TYPE registry_http_requests_total counter\n");
        for ((route, status), n) in m.iter() {
            out.push_str(&format!("registry_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"));
        }
        out
    }
}

/// Logs and counts each request under its route template (`/patients/{id}`), so that no
/// patient identifier or query string (which may hold a login token) reaches a log line.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    state.http.count(&route, status);
    tracing::info!(%method, route = %route, status, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client address.
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter { rate: rate.max(0.001), burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `ip`; false when the bucket is empty.
    fn take(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut m = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() > 10_000 {
            // Forget idle clients (full buckets) so the map stays small.
            let (rate, burst) = (self.rate, self.burst);
            m.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = m.entry(ip).or_insert(Bucket { tokens: self.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// 429 with `Retry-After` when the client's bucket is empty. Health probes are not limited.
pub(crate) async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    if matches!(route, Some("/healthz" | "/readyz")) {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if !state.limiter.take(ip) {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded; retry later\n").into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    next.run(req).await
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie(req: &Request) -> Option<&str> {
    req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')))
    })
}

/// 401 without a known token (Authorization: Bearer, or the dashboard cookie); otherwise the
/// token's [`Scope`] goes into the request's extensions for the handlers.
pub(crate) async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    if route.is_some_and(|r| PUBLIC_ROUTES.contains(&r)) {
        return next.run(req).await;
    }
    let presented = bearer(&req).or_else(|| cookie(&req));
    let scope: Option<Scope> = presented.and_then(|t| state.cfg.tokens.lookup(t)).cloned();
    match scope {
        Some(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        None => {
            let is_ui = route.is_some_and(|r| r == "/" || r.starts_with("/ui/"));
            let body = if is_ui {
                "401: sign in first: open /ui/login?token=YOUR_TOKEN (see docs/api.md)\n"
            } else {
                "401: Authorization: Bearer <token> required\n"
            };
            let mut r = (StatusCode::UNAUTHORIZED, body).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"registry\""));
            r
        }
    }
}
