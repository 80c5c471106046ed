//! A real sled store filled with a synthetic cohort through the ingest path and the projector,
//! and the API router over it, with three tokens: registry-wide, `fuscc` and `pumch`.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::NaiveDate;
use registry_api::{ApiConfig, ProjectorSource, Scope, Secret, Tokens};
use registry_domain::config::Config;
use registry_domain::synth::{self, Profile, SynthConfig};
use registry_ingest::{ingest_batch, RawInput};
use registry_projector::Projector;
use registry_store::Store;
use tower::ServiceExt;

pub const ALL: &str = "all-sites-token-0123456789";
pub const FUSCC: &str = "fuscc-site-token-0123456789";
pub const PUMCH: &str = "pumch-site-token-0123456789";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub projector: Projector,
    /// When the events were received (all in one batch).
    pub received_micros: i64,
    pub cutoff: NaiveDate,
}

pub fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.insert(Secret::new(ALL), Scope::All);
    t.insert(Secret::new(FUSCC), Scope::Site("fuscc".into()));
    t.insert(Secret::new(PUMCH), Scope::Site("pumch".into()));
    t
}

impl Fixture {
    /// `n` synthetic patients (seed 2019) ingested and projected at the profile's cut-off.
    pub fn new(n: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let lines: Vec<Vec<u8>> = synth::generate(&SynthConfig { patients: n, seed: 2019, profile: Profile::Ni2019 })
            .map(|e| e.canonical_json())
            .collect();
        let sources: Vec<String> = (0..lines.len()).map(|i| format!("test:{i}")).collect();
        let inputs: Vec<RawInput<'_>> = lines
            .iter()
            .zip(&sources)
            .map(|(b, s)| RawInput { bytes: b, source: s, subject_site: None, stream_seq: None })
            .collect();
        let received_micros = chrono::Utc::now().timestamp_micros();
        ingest_batch(&store, &inputs, received_micros).expect("ingest");
        // One malformed input, so that rejections show in the metrics.
        let bad = RawInput { bytes: b"{not json", source: "test:bad", subject_site: None, stream_seq: None };
        ingest_batch(&store, &[bad], received_micros).expect("ingest bad");
        let projector = Projector::new(store, Config::default());
        let cutoff = Profile::Ni2019.data_cutoff();
        projector.catch_up(cutoff).expect("catch up");
        Fixture { dir, projector, received_micros, cutoff }
    }

    pub fn config(&self) -> ApiConfig {
        ApiConfig { tokens: tokens(), ..ApiConfig::default() }
    }

    pub fn app(&self) -> Router {
        self.app_with(self.config())
    }

    pub fn app_with(&self, cfg: ApiConfig) -> Router {
        // One store holds events and rejections, as after `registry import`.
        let source = ProjectorSource::new(self.projector.clone(), Config::default())
            .with_rejections(self.projector.store().clone());
        registry_api::router(Arc::new(source), cfg)
    }

    /// (patient_id, site) of every stored patient.
    pub fn sites(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for id in self.projector.store().patient_ids().expect("ids") {
            let ev = self.projector.patient_events(&id).expect("events");
            let site = registry_domain::view::patient_site(&id, &ev).expect("site").to_owned();
            out.push((id, site));
        }
        out
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request through the router (no listener).
pub async fn get(app: &Router, uri: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(app, req.body(Body::empty()).expect("request")).await
}

pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await.expect("body");
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}
