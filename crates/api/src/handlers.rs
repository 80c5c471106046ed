//! The JSON / CSV / text routes, and what they share with the dashboard: the view from the query,
//! the visible patients of a scope, errors.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::projection::PatientProjection;
use registry_domain::view::{RecordedEvent, View};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Scope;
use crate::source::{RegistryView, SourceError};
use registry_domain::view::patient_site;
use crate::AppState;

/// An error answer: status and a one-line message (never a patient id of another site).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: m.into() }
    }
    pub(crate) fn not_found() -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: "no such patient in this view".into() }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> ApiError {
        tracing::error!(error = %e, "registry read failed");
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: "the registry store is not available".into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

/// The view query parameters every route accepts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ViewQuery {
    pub(crate) as_of: Option<String>,
    pub(crate) known_at: Option<String>,
}

pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `as_of` (YYYY-MM-DD, default today UTC) and `known_at` (RFC 3339, default now = everything).
pub(crate) fn parse_view(q: &ViewQuery) -> Result<View, ApiError> {
    let as_of = match q.as_of.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ApiError::bad_request(format!("as_of {s:?} is not a date YYYY-MM-DD")))?,
        None => today(),
    };
    let known_at = match q.known_at.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_instant(s, "known_at")?),
        None => None,
    };
    Ok(View { as_of, known_at })
}

pub(crate) fn parse_instant(s: &str, name: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::bad_request(format!("{name} {s:?} is not an RFC 3339 time such as 2016-05-04T09:12:00Z")))
}

/// Runs a synchronous store read on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "internal error".into(),
    })?
}

/// A patient visible to the caller in the view.
pub(crate) struct Visible {
    pub(crate) site: String,
    pub(crate) events: Vec<RecordedEvent>,
    pub(crate) projection: PatientProjection,
}

/// Every patient listed in the view whose site the scope sees, sorted by patient id.
pub(crate) fn visible_patients(src: &dyn RegistryView, scope: &Scope, view: &View) -> Result<Vec<Visible>, ApiError> {
    let mut out = Vec::new();
    for id in src.patient_ids()? {
        if let Some(v) = visible_patient(src, scope, view, &id)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// One patient, if listed in the view and visible to the scope.
pub(crate) fn visible_patient(
    src: &dyn RegistryView,
    scope: &Scope,
    view: &View,
    id: &str,
) -> Result<Option<Visible>, ApiError> {
    if registry_domain::events::PatientId::parse(id).is_none() {
        return Ok(None);
    }
    let events = src.patient_events(id)?;
    let Some(site) = patient_site(id, &events).map(str::to_owned) else { return Ok(None) };
    if !scope.sees(&site) {
        return Ok(None);
    }
    Ok(src.project(id, &events, view).map(|projection| Visible { site, events, projection }))
}

/// Filters of `GET /patients` (and the dashboard's list).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PatientFilter {
    pub(crate) as_of: Option<String>,
    pub(crate) known_at: Option<String>,
    /// PD1 failure pattern: OF, DF or ODF.
    pub(crate) pattern: Option<String>,
    pub(crate) bbm: Option<String>,
    pub(crate) prior_brain_rt: Option<String>,
    pub(crate) salvage_rt: Option<String>,
    pub(crate) any_rt: Option<String>,
    /// indexed, not_indexed or incomplete.
    pub(crate) status: Option<String>,
}

fn parse_flag(name: &str, v: &Option<String>) -> Result<Option<bool>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("true" | "yes" | "1" | "Y") => Ok(Some(true)),
        Some("false" | "no" | "0" | "N") => Ok(Some(false)),
        Some(s) => Err(ApiError::bad_request(format!("{name} {s:?} is not true or false"))),
    }
}

/// A compiled filter.
pub(crate) struct Filter {
    pattern: Option<String>,
    bbm: Option<bool>,
    prior_brain_rt: Option<bool>,
    salvage_rt: Option<bool>,
    any_rt: Option<bool>,
    status: Option<String>,
}

impl PatientFilter {
    pub(crate) fn view(&self) -> Result<View, ApiError> {
        parse_view(&ViewQuery { as_of: self.as_of.clone(), known_at: self.known_at.clone() })
    }

    pub(crate) fn compile(&self) -> Result<Filter, ApiError> {
        let pattern = match self.pattern.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(p @ ("OF" | "DF" | "ODF")) => Some(p.to_owned()),
            Some(p) => return Err(ApiError::bad_request(format!("pattern {p:?} is not OF, DF or ODF"))),
        };
        let status = match self.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s @ ("indexed" | "not_indexed" | "incomplete")) => Some(s.to_owned()),
            Some(s) => return Err(ApiError::bad_request(format!("status {s:?} is not indexed, not_indexed or incomplete"))),
        };
        Ok(Filter {
            pattern,
            bbm: parse_flag("bbm", &self.bbm)?,
            prior_brain_rt: parse_flag("prior_brain_rt", &self.prior_brain_rt)?,
            salvage_rt: parse_flag("salvage_rt", &self.salvage_rt)?,
            any_rt: parse_flag("any_rt", &self.any_rt)?,
            status,
        })
    }
}

impl Filter {
    /// Whether a labels JSON object passes. A null flag matches neither true nor false.
    pub(crate) fn matches(&self, labels: &Value) -> bool {
        let flag = |want: Option<bool>, v: &Value| want.is_none_or(|w| v.as_bool() == Some(w));
        self.pattern.as_deref().is_none_or(|p| labels["pd1"]["pattern"].as_str() == Some(p))
            && self.status.as_deref().is_none_or(|s| labels["status"].as_str() == Some(s))
            && flag(self.bbm, &labels["baseline"]["bbm"])
            && flag(self.prior_brain_rt, &labels["rt"]["prior_brain"])
            && flag(self.salvage_rt, &labels["rt"]["salvage"])
            && flag(self.any_rt, &labels["rt"]["any"])
    }
}

pub(crate) fn labels_value(p: &PatientProjection) -> Value {
    serde_json::to_value(&p.labels).unwrap_or(Value::Null)
}

fn view_json(view: &View) -> Value {
    json!({
        "as_of": view.as_of,
        "known_at": view.known_at.map(|k| k.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    })
}

/// The labels JSON of every patient listed in the view whose site the scope sees and that passes
/// `filter`, sorted by patient id: each from its stored label record when that is exact for the
/// view (`RegistryView::stored_labels`), the others refolded.
pub(crate) fn visible_labels(src: &dyn RegistryView, scope: &Scope, view: &View, filter: &Filter) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for id in src.patient_ids()? {
        let labels = match src.stored_labels(&id, view)? {
            Some((site, line)) => {
                if !scope.sees(&site) {
                    continue;
                }
                serde_json::from_str::<Value>(&line)
                    .map_err(|e| SourceError(format!("a stored label record does not parse: {e}")))?
            }
            None => match visible_patient(src, scope, view, &id)? {
                Some(v) => labels_value(&v.projection),
                None => continue,
            },
        };
        if filter.matches(&labels) {
            out.push(labels);
        }
    }
    Ok(out)
}

/// `GET /patients`: the labels of every visible patient passing the filters, sorted by id (each
/// from its stored label record when that is exact for the view, as `GET /patients/{id}`).
pub(crate) async fn patients(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<PatientFilter>,
) -> Result<Json<Value>, ApiError> {
    let view = q.view()?;
    let filter = q.compile()?;
    let src = s.source.clone();
    let list = blocking(move || visible_labels(src.as_ref(), &scope, &view, &filter)).await?;
    let mut out = view_json(&view);
    out["count"] = json!(list.len());
    out["patients"] = Value::Array(list);
    Ok(Json(out))
}

/// The answers of `GET /patients/{id}` by (patient, view): the patient's site and its labels line
/// (or `None`: not listed in the view), each valid at the log position it was computed at. Any
/// append moves the position and so retires every entry (a patient's labels depend on its events
/// and on the events its links name, so nothing finer is safe). At most [`LabelsCache::MAX`]
/// entries; when full it starts again empty.
#[derive(Default)]
pub(crate) struct LabelsCache {
    map: std::sync::Mutex<HashMap<(String, View), CachedLabels>>,
}

#[derive(Clone)]
struct CachedLabels {
    position: u64,
    site: Option<String>,
    body: Option<std::sync::Arc<str>>,
}

impl LabelsCache {
    const MAX: usize = 200_000;

    fn get(&self, id: &str, view: &View, position: u64) -> Option<CachedLabels> {
        let m = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(&(id.to_owned(), *view)).filter(|c| c.position == position).cloned()
    }

    fn put(&self, id: &str, view: &View, entry: CachedLabels) {
        let mut m = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= Self::MAX {
            m.clear();
        }
        m.insert((id.to_owned(), *view), entry);
    }
}

/// The labels line of one patient in a view and its site, through the cache: `(site, body)`,
/// `body` `None` when the patient is not listed in the view.
fn patient_labels(
    src: &dyn RegistryView,
    cache: &LabelsCache,
    id: &str,
    view: &View,
) -> Result<(Option<String>, Option<std::sync::Arc<str>>), ApiError> {
    if registry_domain::events::PatientId::parse(id).is_none() {
        return Ok((None, None));
    }
    let position = src.log_position();
    if let Some(hit) = position.and_then(|p| cache.get(id, view, p)) {
        return Ok((hit.site, hit.body));
    }
    let events = src.patient_events(id)?;
    let site = patient_site(id, &events).map(str::to_owned);
    let body = src.project(id, &events, view).map(|p| {
        // Exactly the bytes of `registry labels` (one line), plus a newline.
        let mut line = p.labels.to_json_line();
        line.push('\n');
        std::sync::Arc::<str>::from(line)
    });
    if let Some(position) = position {
        cache.put(id, view, CachedLabels { position, site: site.clone(), body: body.clone() });
    }
    Ok((site, body))
}

/// `GET /patients/{id}`: the labels, the same JSON object as `registry labels` prints.
pub(crate) async fn patient(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ApiError> {
    let view = parse_view(&q)?;
    // The stored record first: a store read or two, answered on this task without the blocking
    // pool's hop; a fold (and its many reads) goes to the blocking pool.
    if registry_domain::events::PatientId::parse(&id).is_some() {
        if let Some((site, mut line)) = s.source.stored_labels(&id, &view)? {
            if !scope.sees(&site) {
                return Err(ApiError::not_found());
            }
            line.push('\n');
            return Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response());
        }
    }
    let src = s.source.clone();
    let cache = s.labels_cache.clone();
    let (site, body) = blocking(move || patient_labels(src.as_ref(), &cache, &id, &view)).await?;
    // Another site's patient is as absent as an unknown one.
    let body = body.filter(|_| site.as_deref().is_some_and(|s| scope.sees(s))).ok_or_else(ApiError::not_found)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// `GET /patients/{id}/timeline`.
pub(crate) async fn timeline(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Json<crate::timeline::Timeline>, ApiError> {
    let view = parse_view(&q)?;
    let src = s.source.clone();
    let t = blocking(move || {
        let v = visible_patient(src.as_ref(), &scope, &view, &id)?.ok_or_else(ApiError::not_found)?;
        Ok(crate::timeline::build(&id, &v.site, &v.events, &v.projection, &view))
    })
    .await?;
    Ok(Json(t))
}

/// `GET /cohort/report`: the report JSON over the visible patients.
pub(crate) async fn cohort_report(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ApiError> {
    let view = parse_view(&q)?;
    let src = s.source.clone();
    let body = blocking(move || {
        let visible = visible_patients(src.as_ref(), &scope, &view)?;
        crate::report::report_json(&visible, &view)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /cohort/adtte.csv`: the ADTTE export over the visible patients.
pub(crate) async fn adtte(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ApiError> {
    let view = parse_view(&q)?;
    let src = s.source.clone();
    let body = blocking(move || {
        let visible = visible_patients(src.as_ref(), &scope, &view)?;
        crate::report::adtte_csv(&visible, &view)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AlertsQuery {
    since: Option<String>,
    limit: Option<usize>,
    kind: Option<String>,
    as_of: Option<String>,
    known_at: Option<String>,
}

/// The visible alerts raised in `[since, known_at]`, oldest first.
pub(crate) fn visible_alerts(
    src: &dyn RegistryView,
    scope: &Scope,
    since_micros: i64,
    known_at: Option<DateTime<Utc>>,
    kind: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>, ApiError> {
    let mut sites: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    for a in src.alerts_since(since_micros, usize::MAX)? {
        if known_at.is_some_and(|k| a.raised_at_micros > k.timestamp_micros()) {
            break; // oldest first: nothing later is known
        }
        if kind.is_some_and(|k| k != a.kind) {
            continue;
        }
        let mut body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let pid = body["patient_id"].as_str().unwrap_or_default().to_owned();
        let site = match sites.get(&pid) {
            Some(s) => s.clone(),
            None => {
                let s = patient_site(&pid, &src.patient_events(&pid)?).map(str::to_owned);
                sites.insert(pid.clone(), s.clone());
                s
            }
        };
        if !site.as_deref().is_some_and(|s| scope.sees(s)) {
            continue;
        }
        if let Value::Object(m) = &mut body {
            let at = DateTime::from_timestamp_micros(a.raised_at_micros).unwrap_or_default();
            m.insert("raised_at".into(), json!(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        }
        out.push(body);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// `GET /alerts?since=RFC3339`: alerts raised at or after `since` (default: all), oldest first.
/// `known_at` caps the raising time; `as_of` is accepted (alerts are facts of their raising time).
pub(crate) async fn alerts(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let view = parse_view(&ViewQuery { as_of: q.as_of.clone(), known_at: q.known_at.clone() })?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_instant(s, "since")?.timestamp_micros(),
        None => i64::MIN,
    };
    let limit = q.limit.unwrap_or(s.cfg.max_alerts).clamp(1, s.cfg.max_alerts);
    let src = s.source.clone();
    let kind = q.kind.clone();
    let list =
        blocking(move || visible_alerts(src.as_ref(), &scope, since, view.known_at, kind.as_deref(), limit)).await?;
    Ok(Json(json!({"count": list.len(), "alerts": list})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RejectionsQuery {
    reason: Option<String>,
    site: Option<String>,
    open: Option<bool>,
    after: Option<u64>,
    limit: Option<usize>,
    as_of: Option<String>,
    known_at: Option<String>,
}

/// `GET /rejections`: the inputs the ingest refused, oldest first (docs/api.md). A site's token
/// reads its own site's only: those published on its subjects, or naming it when imported.
pub(crate) async fn rejections(
    State(s): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<RejectionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let view = parse_view(&ViewQuery { as_of: q.as_of.clone(), known_at: q.known_at.clone() })?;
    let reason = match q.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Some(
            registry_domain::validate::RejectReason::from_code(r)
                .ok_or_else(|| ApiError::bad_request(format!("reason {r:?} is not a rejection reason code")))?,
        ),
        None => None,
    };
    let asked = q.site.clone().filter(|x| !x.is_empty());
    let site = match (&scope, asked) {
        (Scope::All, asked) => asked,
        (Scope::Site(own), Some(asked)) if asked != *own => {
            return Err(ApiError { status: StatusCode::FORBIDDEN, message: format!("this token reads site {own}'s rejections only") });
        }
        (Scope::Site(own), _) => Some(own.clone()),
    };
    let limit = q.limit.unwrap_or(s.cfg.max_alerts).clamp(1, s.cfg.max_alerts);
    let filter = registry_ingest::RejectionFilter {
        reason,
        site,
        open: q.open.unwrap_or(false),
        after_id: q.after.unwrap_or(0),
        known_at_micros: view.known_at.map(|t| t.timestamp_micros()),
    };
    let src = s.source.clone();
    let list = blocking(move || Ok(src.rejections(&filter, limit)?)).await?.ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: "this API has no store of rejections (they are kept by the ingest's store)".into(),
    })?;
    // Where the next page starts, when this one is full.
    let next_after = (list.len() == limit).then(|| list.last().map(|r| r.id)).flatten();
    Ok(Json(json!({"count": list.len(), "next_after": next_after, "rejections": list})))
}

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let src = s.source.clone();
    match blocking(move || Ok(src.ready()?)).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

/// `GET /metrics`: Prometheus text. Operational, registry-wide: only a `*` token may read it.
pub(crate) async fn metrics(State(s): State<AppState>, Extension(scope): Extension<Scope>) -> Result<Response, ApiError> {
    if scope != Scope::All {
        return Err(ApiError { status: StatusCode::FORBIDDEN, message: "metrics need a registry-wide token".into() });
    }
    let src = s.source.clone();
    let ops = blocking(move || Ok(src.ops()?)).await?;
    let mut out = String::new();
    match &ops.ingest_counters {
        Some(text) => out.push_str(text),
        None => {
            out.push_str("# HELP registry_events_ingested_total Events accepted into the log.\n");
            out.push_str("# TYPE registry_events_ingested_total counter\n");
            out.push_str(&format!("registry_events_ingested_total {}\n", ops.events_ingested));
            out.push_str("# HELP registry_events_rejected_total Inputs rejected, by reason.\n");
            out.push_str("# TYPE registry_events_rejected_total counter\n");
            for (reason, n) in &ops.rejected_by_reason {
                out.push_str(&format!("registry_events_rejected_total{{reason=\"{}\"}} {n}\n", escape_label(reason)));
            }
        }
    }
    out.push_str("# HELP registry_log_events Events in the log this API reads.\n");
    out.push_str("# TYPE registry_log_events gauge\n");
    out.push_str(&format!("registry_log_events {}\n", ops.events_ingested));
    out.push_str("# HELP registry_projection_lag_events Events in the log not yet projected.\n");
    out.push_str("# TYPE registry_projection_lag_events gauge\n");
    out.push_str(&format!("registry_projection_lag_events {}\n", ops.projection_lag));
    out.push_str("# HELP registry_projected_events Events of the log included in the stored labels.\n");
    out.push_str("# TYPE registry_projected_events gauge\n");
    out.push_str(&format!("registry_projected_events {}\n", ops.projected_events));
    out.push_str("# HELP registry_alerts_total Alerts raised, by kind.\n");
    out.push_str("# TYPE registry_alerts_total counter\n");
    let kinds: BTreeMap<&String, &u64> = ops.alerts_by_kind.iter().collect();
    for (kind, n) in kinds {
        out.push_str(&format!("registry_alerts_total{{kind=\"{}\"}} {n}\n", escape_label(kind)));
    }
    out.push_str(&s.http.render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
