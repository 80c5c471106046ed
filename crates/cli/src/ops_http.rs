//! The operations endpoint every service exposes: `/healthz` (the process is up), `/readyz` (its
//! store answers), `/metrics` (Prometheus text: events ingested, rejected by reason, projection
//! lag, alerts by kind, heap and resident memory). No patient identifier is ever logged or exported here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use registry_ingest::IngestMetrics;
use registry_projector::Projector;

#[derive(Clone)]
pub(crate) struct OpsState {
    ingest: Arc<IngestMetrics>,
    projector: Option<Projector>,
}

impl OpsState {
    pub(crate) fn new(ingest: Arc<IngestMetrics>, projector: Option<Projector>) -> OpsState {
        OpsState { ingest, projector }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<OpsState>) -> (StatusCode, &'static str) {
    match &s.projector {
        Some(p) => match p.store().labels_through_seq() {
            Ok(_) => (StatusCode::OK, "ready\n"),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
        },
        None => (StatusCode::OK, "ready\n"),
    }
}

async fn metrics(State(s): State<OpsState>) -> String {
    let mut out = s.ingest.render();
    if let Some(heap) = crate::heap::live_bytes() {
        out.push_str("# HELP registry_heap_bytes Bytes the process holds on its heap (built with the feature heap-stats).\n");
        out.push_str("# TYPE registry_heap_bytes gauge\n");
        out.push_str(&format!("registry_heap_bytes {heap}\n"));
    }
    if let Some(rss) = resident_bytes() {
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        out.push_str(&format!("process_resident_memory_bytes {rss}\n"));
    }
    if let Some(p) = &s.projector {
        let store = p.store();
        let lag = store.last_seq().saturating_sub(store.labels_through_seq().unwrap_or(0));
        out.push_str("# HELP registry_projection_lag_events Events in the projector's log not yet projected.\n");
        out.push_str("# TYPE registry_projection_lag_events gauge\n");
        out.push_str(&format!("registry_projection_lag_events {lag}\n"));
        out.push_str("# HELP registry_projected_events Events of the projector's log included in the stored labels.\n");
        out.push_str("# TYPE registry_projected_events gauge\n");
        out.push_str(&format!("registry_projected_events {}\n", store.labels_through_seq().unwrap_or(0)));
        let (cached_events, cached_patients) = p.cache_size();
        out.push_str("# HELP registry_projector_cache_events Decoded events held by the projector's refold cache.\n");
        out.push_str("# TYPE registry_projector_cache_events gauge\n");
        out.push_str(&format!("registry_projector_cache_events {cached_events}\n"));
        out.push_str("# HELP registry_projector_cache_patients Patients held by the projector's refold cache.\n");
        out.push_str("# TYPE registry_projector_cache_patients gauge\n");
        out.push_str(&format!("registry_projector_cache_patients {cached_patients}\n"));
        let by_kind = store.alert_counts_by_kind().unwrap_or_default();
        out.push_str("# HELP registry_alerts_total Alerts raised, by kind.\n");
        out.push_str("# TYPE registry_alerts_total counter\n");
        for (kind, n) in by_kind {
            out.push_str(&format!("registry_alerts_total{{kind=\"{kind}\"}} {n}\n"));
        }
    }
    out
}

/// The process's resident set (VmRSS), from /proc; `None` where there is no /proc.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Serves the operations endpoint on `addr` until `shutdown`.
pub(crate) async fn serve(addr: SocketAddr, state: OpsState, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "operations endpoint listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
