//! The dashboard: plain server-rendered HTML with inline CSS and SVG, no script, no external URL.
//! `/` (cohort overview, survival and cumulative-incidence figures from `registry-report`, alert
//! feed, quick filters), `/ui/patients` (the filterable list), `/ui/patients/{id}` (the timeline:
//! target-sum curve with responses, drug bars, radiotherapy courses, PD1/PD2 and death markers),
//! `/ui/login?token=…` (sets the HttpOnly SameSite=Strict cookie) and `/ui/logout`.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Scope;
use crate::guard::COOKIE;
use crate::handlers::{
    blocking, labels_value, parse_view, visible_alerts, visible_labels, visible_patient, visible_patients, ApiError, PatientFilter,
    ViewQuery,
};
use crate::timeline::Timeline;
use crate::AppState;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#234;color:#fff;padding:.6em 1.2em}\
header a{color:#fff;margin-right:1.2em;text-decoration:none}main{padding:0 1.2em 2em;max-width:80em}\
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
th{background:#f1f1f1}.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}.card{border:1px solid #ccc;border-radius:4px;padding:.5em .9em;min-width:8em}\
.card b{display:block;font-size:1.5em}.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0;flex:1 1 28em}svg{max-width:100%;height:auto}\
form.filters{display:flex;flex-wrap:wrap;gap:.8em;align-items:end;margin:.8em 0}form.filters label{display:flex;flex-direction:column;font-size:.85em}\
.muted{color:#666}.err{color:#a00}";

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query value (unreserved characters kept).
fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// The view part of a link's query (`as_of=…&known_at=…`), empty when the defaults are used.
fn view_qs(as_of: &Option<String>, known_at: &Option<String>) -> String {
    let mut parts = Vec::new();
    if let Some(a) = as_of.as_deref().filter(|s| !s.is_empty()) {
        parts.push(format!("as_of={}", enc(a)));
    }
    if let Some(k) = known_at.as_deref().filter(|s| !s.is_empty()) {
        parts.push(format!("known_at={}", enc(k)));
    }
    parts.join("&")
}

fn with_qs(path: &str, qs: &str) -> String {
    if qs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{qs}")
    }
}

fn page(title: &str, qs: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head>\n<body><header>\
<a href=\"{home}\"><b>ALK+ crizotinib registry</b></a><a href=\"{home}\">Overview</a><a href=\"{list}\">Patients</a><a href=\"/ui/logout\">Sign out</a></header>\n<main>\n{body}\n</main></body></html>\n",
        t = esc(title),
        home = esc(&with_qs("/", qs)),
        list = esc(&with_qs("/ui/patients", qs)),
    ))
}

fn err_page(e: ApiError) -> Response {
    let status = e.status;
    (status, page("Error", "", &format!("<h1>{}</h1><p class=\"err\">{}</p>", status.as_u16(), esc(&e.message)))).into_response()
}

fn view_form(action: &str, q: &ViewQuery) -> String {
    format!(
        "<form class=\"filters\" method=\"get\" action=\"{}\"><label>as of (clinical cut-off)<input type=\"date\" name=\"as_of\" value=\"{}\"></label>\
<label>known at (RFC 3339)<input type=\"text\" name=\"known_at\" placeholder=\"2019-01-01T00:00:00Z\" value=\"{}\"></label><button>Show</button></form>",
        esc(action),
        esc(q.as_of.as_deref().unwrap_or("")),
        esc(q.known_at.as_deref().unwrap_or(""))
    )
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "–".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn patient_table(labels: &[Value], qs: &str) -> String {
    let mut o = String::from(
        "<table class=\"patients\"><thead><tr><th>patient</th><th>status</th><th>index date</th><th>BOR</th><th>PD1</th><th>pattern</th>\
<th>PD2</th><th>BBM</th><th>prior brain RT</th><th>salvage RT</th><th>any RT</th><th>CBPD</th><th>death</th></tr></thead><tbody>\n",
    );
    for l in labels {
        let id = l["patient_id"].as_str().unwrap_or_default();
        let href = with_qs(&format!("/ui/patients/{}", enc(id)), qs);
        let _ = writeln!(
            o,
            "<tr><td><a class=\"patient-link\" href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&href),
            esc(id),
            esc(&s(&l["status"])),
            esc(&s(&l["index_date"])),
            esc(&s(&l["best_response"])),
            esc(&s(&l["pd1"]["date"])),
            esc(&s(&l["pd1"]["pattern"])),
            esc(&s(&l["pd2"]["date"])),
            esc(&s(&l["baseline"]["bbm"])),
            esc(&s(&l["rt"]["prior_brain"])),
            esc(&s(&l["rt"]["salvage"])),
            esc(&s(&l["rt"]["any"])),
            esc(&s(&l["cbpd"])),
            esc(&s(&l["death_date"])),
        );
    }
    o.push_str("</tbody></table>\n");
    o
}

/// `/`: the cohort overview.
pub(crate) async fn overview(
    State(st): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let view = match parse_view(&q) {
        Ok(v) => v,
        Err(e) => return err_page(e),
    };
    let src = st.source.clone();
    let scope2 = scope.clone();
    let res = blocking(move || {
        let visible = visible_patients(src.as_ref(), &scope2, &view)?;
        let report = crate::report::build(&visible, &view);
        let alerts = visible_alerts(src.as_ref(), &scope2, i64::MIN, view.known_at, None, usize::MAX)?;
        let labels: Vec<Value> = visible.iter().map(|v| labels_value(&v.projection)).collect();
        // The scope's rejections no fixed resend has resolved yet (a few, in a working registry).
        let filter = registry_ingest::RejectionFilter {
            site: match &scope2 {
                Scope::All => None,
                Scope::Site(s) => Some(s.clone()),
            },
            open: true,
            known_at_micros: view.known_at.map(|t| t.timestamp_micros()),
            ..registry_ingest::RejectionFilter::default()
        };
        let rejections = src.rejections(&filter, OPEN_REJECTIONS_READ)?;
        Ok((labels, report, alerts, rejections))
    })
    .await;
    let (labels, report, alerts, rejections) = match res {
        Ok(x) => x,
        Err(e) => return err_page(e),
    };
    let qs = view_qs(&q.as_of, &q.known_at);
    let count = |f: &dyn Fn(&Value) -> bool| labels.iter().filter(|l| f(l)).count();
    let n = labels.len();
    let indexed = count(&|l| l["status"] == "indexed");
    let pd1 = count(&|l| !l["pd1"].is_null());
    let pd2 = count(&|l| !l["pd2"].is_null());
    let deaths = count(&|l| !l["death_date"].is_null());
    let bbm = count(&|l| l["baseline"]["bbm"] == true);
    let mut body = String::new();
    let scope_note = match &scope {
        Scope::All => "all sites".to_owned(),
        Scope::Site(s) => format!("site {s} only"),
    };
    let _ = write!(
        body,
        "<h1>Cohort overview</h1><p class=\"muted\">View: as of {}, known at {} — {}.</p>{}",
        esc(&view.as_of.to_string()),
        esc(&view.known_at.map_or("now".to_owned(), |k| k.to_rfc3339())),
        esc(&scope_note),
        view_form("/", &q)
    );
    let (orr, dcr, figs) = match &report {
        Ok(r) => {
            let j = r.to_json();
            let pct = |v: &Value| v.as_f64().map_or("–".to_owned(), |x| format!("{:.1}%", x * 100.0));
            let html = r.to_html();
            let figs: Vec<String> = ["pfs1", "pfs2", "os", "cif"]
                .iter()
                .filter_map(|id| crate::report::figure(&html, id).map(str::to_owned))
                .collect();
            (pct(&j["orr"]), pct(&j["dcr"]), figs)
        }
        Err(e) => ("–".into(), "–".into(), vec![format!("<p class=\"err\">report unavailable: {}</p>", esc(&e.message))]),
    };
    let _ = write!(
        body,
        "<div class=\"cards\"><div class=\"card\"><b id=\"n-patients\">{n}</b>patients</div><div class=\"card\"><b>{indexed}</b>indexed</div>\
<div class=\"card\"><b id=\"orr\">{orr}</b>ORR</div><div class=\"card\"><b>{dcr}</b>DCR</div><div class=\"card\"><b>{pd1}</b>PD1</div>\
<div class=\"card\"><b>{pd2}</b>PD2</div><div class=\"card\"><b>{bbm}</b>baseline BBM</div><div class=\"card\"><b>{deaths}</b>deaths</div></div>"
    );
    body.push_str("<h2>Survival and cumulative incidence</h2><div class=\"figs\">");
    for f in &figs {
        body.push_str(f);
    }
    body.push_str("</div>");

    body.push_str("<h2>Alerts</h2>");
    if alerts.is_empty() {
        body.push_str("<p class=\"muted\">No alert in this view.</p>");
    } else {
        body.push_str("<table class=\"alerts\"><thead><tr><th>raised at</th><th>kind</th><th>patient</th><th>facts</th></tr></thead><tbody>");
        for a in alerts.iter().rev().take(50) {
            let id = a["patient_id"].as_str().unwrap_or_default();
            let mut facts = a["facts"].to_string();
            if facts.len() > 160 {
                let cut = (0..=160).rev().find(|i| facts.is_char_boundary(*i)).unwrap_or(0);
                facts.truncate(cut);
                facts.push('…');
            }
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td><td><code>{}</code></td></tr>",
                esc(a["raised_at"].as_str().unwrap_or_default()),
                esc(a["kind"].as_str().unwrap_or_default()),
                esc(&with_qs(&format!("/ui/patients/{}", enc(id)), &qs)),
                esc(id),
                esc(&facts)
            );
        }
        let _ = write!(
            body,
            "</tbody></table><p class=\"muted\">Latest {} of {} (JSON: <code>/alerts</code>).</p>",
            alerts.len().min(50),
            alerts.len()
        );
    }

    if let Some(rejections) = &rejections {
        rejections_section(&mut body, rejections);
    }

    body.push_str("<h2>Patients</h2><p>");
    let amp = if qs.is_empty() { String::new() } else { format!("&{qs}") };
    for (label, f) in [
        ("pattern OF", "pattern=OF"),
        ("pattern DF", "pattern=DF"),
        ("pattern ODF", "pattern=ODF"),
        ("baseline BBM", "bbm=true"),
        ("prior brain RT", "prior_brain_rt=true"),
        ("salvage RT", "salvage_rt=true"),
        ("any RT", "any_rt=true"),
    ] {
        let _ = write!(body, "<a href=\"{}\">{}</a> · ", esc(&format!("/ui/patients?{f}{amp}")), esc(label));
    }
    let _ = write!(body, "<a href=\"{}\">all</a></p>", esc(&with_qs("/ui/patients", &qs)));
    body.push_str(&patient_table(&labels, &qs));
    page("Registry overview", &qs, &body).into_response()
}

/// At most this many open rejections are read for the overview.
const OPEN_REJECTIONS_READ: usize = 10_000;

/// "Rejected inputs to fix": the open rejections, newest first, the latest 20 shown.
fn rejections_section(body: &mut String, open: &[registry_ingest::RejectionEntry]) {
    body.push_str("<h2>Rejected inputs to fix</h2>");
    if open.is_empty() {
        body.push_str("<p class=\"muted\" id=\"open-rejections\">None open: every refused input was sent again fixed, or none was refused.</p>");
        return;
    }
    body.push_str("<table class=\"rejections\" id=\"open-rejections\"><thead><tr><th>rejected at</th><th>site</th><th>reason</th><th>what is wrong</th><th>event_id</th><th>source</th></tr></thead><tbody>");
    for r in open.iter().rev().take(20) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&r.rejected_at),
            esc(r.site.as_deref().unwrap_or("–")),
            esc(&r.reason),
            esc(&r.message),
            esc(r.event_id.as_deref().unwrap_or("–")),
            esc(&r.source)
        );
    }
    let more = if open.len() == OPEN_REJECTIONS_READ { " or more" } else { "" };
    let _ = write!(
        body,
        "</tbody></table><p class=\"muted\">Latest {} of {}{more} not yet sent again fixed (JSON with the raw inputs: <code>/rejections?open=true</code>; on the command line: <code>registry rejections --open</code>).</p>",
        open.len().min(20),
        open.len()
    );
}

fn select(name: &str, current: &Option<String>, options: &[(&str, &str)]) -> String {
    let cur = current.as_deref().unwrap_or("");
    let mut o = format!("<label>{}<select name=\"{}\">", esc(name), esc(name));
    for (v, label) in options {
        let sel = if *v == cur { " selected" } else { "" };
        let _ = write!(o, "<option value=\"{}\"{sel}>{}</option>", esc(v), esc(label));
    }
    o.push_str("</select></label>");
    o
}

/// `/ui/patients`: the list with filters as a GET form.
pub(crate) async fn patient_list(
    State(st): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<PatientFilter>,
) -> Response {
    let (view, filter) = match q.view().and_then(|v| q.compile().map(|f| (v, f))) {
        Ok(x) => x,
        Err(e) => return err_page(e),
    };
    let src = st.source.clone();
    let res = blocking(move || visible_labels(src.as_ref(), &scope, &view, &filter)).await;
    let labels = match res {
        Ok(l) => l,
        Err(e) => return err_page(e),
    };
    let qs = view_qs(&q.as_of, &q.known_at);
    let yn: &[(&str, &str)] = &[("", "any"), ("true", "yes"), ("false", "no")];
    let mut body = String::from("<h1>Patients</h1><form class=\"filters\" method=\"get\" action=\"/ui/patients\">");
    body.push_str(&select("pattern", &q.pattern, &[("", "any"), ("OF", "OF"), ("DF", "DF"), ("ODF", "ODF")]));
    body.push_str(&select(
        "status",
        &q.status,
        &[("", "any"), ("indexed", "indexed"), ("not_indexed", "not indexed"), ("incomplete", "incomplete")],
    ));
    body.push_str(&select("bbm", &q.bbm, yn));
    body.push_str(&select("prior_brain_rt", &q.prior_brain_rt, yn));
    body.push_str(&select("salvage_rt", &q.salvage_rt, yn));
    body.push_str(&select("any_rt", &q.any_rt, yn));
    let _ = write!(
        body,
        "<label>as of<input type=\"date\" name=\"as_of\" value=\"{}\"></label><label>known at<input type=\"text\" name=\"known_at\" value=\"{}\"></label><button>Filter</button></form>",
        esc(q.as_of.as_deref().unwrap_or("")),
        esc(q.known_at.as_deref().unwrap_or(""))
    );
    let _ = write!(body, "<p><span id=\"count\">{}</span> patients.</p>", labels.len());
    body.push_str(&patient_table(&labels, &qs));
    page("Patients", &qs, &body).into_response()
}

/// `/ui/patients/{id}`: the timeline page.
pub(crate) async fn patient_page(
    State(st): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let view = match parse_view(&q) {
        Ok(v) => v,
        Err(e) => return err_page(e),
    };
    let src = st.source.clone();
    let res = blocking(move || {
        let v = visible_patient(src.as_ref(), &scope, &view, &id)?.ok_or_else(ApiError::not_found)?;
        Ok(crate::timeline::build(&id, &v.site, &v.events, &v.projection, &view))
    })
    .await;
    let t = match res {
        Ok(t) => t,
        Err(e) => return err_page(e),
    };
    let qs = view_qs(&q.as_of, &q.known_at);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Patient {}</h1><p class=\"muted\">Site {} · view as of {}{}</p>{}",
        esc(&t.patient_id),
        esc(&t.site_id),
        esc(&t.as_of.to_string()),
        t.known_at.as_deref().map_or(String::new(), |k| format!(", known at {}", esc(k))),
        view_form(&format!("/ui/patients/{}", enc(&t.patient_id)), &q)
    );
    body.push_str(&timeline_svg(&t));
    body.push_str("<h2>Labels</h2><table class=\"labels\"><tbody>");
    if let Value::Object(m) = &t.labels {
        for (k, v) in m {
            let shown = match v {
                Value::Object(_) | Value::Array(_) => v.to_string(),
                other => s(other),
            };
            let _ = write!(body, "<tr><th>{}</th><td><code>{}</code></td></tr>", esc(k), esc(&shown));
        }
    }
    body.push_str("</tbody></table><h2>Time points</h2><table><thead><tr><th>date</th><th>segment</th><th>response</th><th>target sum (mm)</th></tr></thead><tbody>");
    for tp in &t.timepoints {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            tp.date,
            tp.segment,
            esc(&tp.response),
            tp.target_sum_mm.map_or("–".to_owned(), |x| format!("{x}")),
            if tp.all_targets_evaluated { "" } else { " (not all evaluated)" }
        );
    }
    body.push_str("</tbody></table><h2>Events in view</h2><table><thead><tr><th>occurred on</th><th>type</th><th>seq</th><th>counts</th></tr></thead><tbody>");
    for e in &t.events {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(e.event["occurred_on"].as_str().unwrap_or_default()),
            esc(e.event["event_type"].as_str().unwrap_or_default()),
            e.seq,
            if e.counts { "yes" } else { "hidden" }
        );
    }
    body.push_str("</tbody></table>");
    if let Value::Array(f) = &t.findings {
        if !f.is_empty() {
            body.push_str("<h2>Data-quality findings</h2><ul>");
            for x in f {
                let _ = write!(body, "<li>{}: {}</li>", esc(&s(&x["kind"])), esc(&s(&x["message"])));
            }
            body.push_str("</ul>");
        }
    }
    page(&format!("Patient {}", t.patient_id), &qs, &body).into_response()
}

fn date_of(v: &Value) -> Option<NaiveDate> {
    v.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The timeline figure: target-sum curve with time-point responses, scans, drug bars,
/// radiotherapy courses, and T0 / PD1 / PD2 / death markers on one date axis.
pub(crate) fn timeline_svg(t: &Timeline) -> String {
    const W: f64 = 960.0;
    const L: f64 = 70.0;
    const R: f64 = 20.0;
    const PLOT_TOP: f64 = 20.0;
    const PLOT_H: f64 = 200.0;
    let counting: Vec<&Value> = t.events.iter().filter(|e| e.counts).map(|e| &e.event).collect();
    let mut dates: Vec<NaiveDate> = counting.iter().filter_map(|e| date_of(&e["occurred_on"])).collect();
    for k in ["index_date", "diagnosis_date", "death_date"] {
        dates.extend(date_of(&t.labels[k]));
    }
    let (Some(&start), Some(&end)) = (dates.iter().min(), dates.iter().max()) else {
        return "<p class=\"muted\">No dated event in this view.</p>".to_owned();
    };
    let span = ((end - start).num_days().max(1)) as f64;
    let x = |d: NaiveDate| L + (d - start).num_days() as f64 / span * (W - L - R);
    let mut o = String::new();

    // Courses of drugs: start paired with the earliest stop of the same course on or after it.
    struct Bar {
        from: NaiveDate,
        to: NaiveDate,
        label: String,
        open: bool,
    }
    let mut drugs: Vec<Bar> = Vec::new();
    for e in &counting {
        if e["event_type"] == "treatment.started" {
            let Some(from) = date_of(&e["occurred_on"]) else { continue };
            let course = &e["payload"]["course_id"];
            let stop = counting
                .iter()
                .filter(|s| s["event_type"] == "treatment.stopped" && &s["payload"]["course_id"] == course)
                .filter_map(|s| date_of(&s["occurred_on"]))
                .filter(|d| *d >= from)
                .min();
            drugs.push(Bar {
                from,
                to: stop.unwrap_or(end),
                label: e["payload"]["agent"].as_str().unwrap_or("drug").to_owned(),
                open: stop.is_none(),
            });
        }
    }
    let rts: Vec<Bar> = counting
        .iter()
        .filter(|e| e["event_type"] == "radiotherapy.delivered")
        .filter_map(|e| {
            let from = date_of(&e["occurred_on"])?;
            let to = date_of(&e["payload"]["end_date"]).unwrap_or(from);
            let label = format!(
                "{} {}",
                e["payload"]["modality"].as_str().unwrap_or("rt"),
                e["payload"]["region"].as_str().unwrap_or("")
            );
            Some(Bar { from, to, label, open: false })
        })
        .collect();
    let drug_top = PLOT_TOP + PLOT_H + 40.0;
    let rt_top = drug_top + 22.0 * drugs.len().max(1) as f64 + 16.0;
    let height = rt_top + 22.0 * rts.len().max(1) as f64 + 40.0;
    let _ = write!(
        o,
        "<svg id=\"timeline\" role=\"img\" aria-label=\"timeline of {}\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" font-size=\"11\">",
        esc(&t.patient_id)
    );
    let _ = write!(o, "<title>Timeline of {}</title>", esc(&t.patient_id));

    // Target-sum plot.
    let mut pts1: Vec<(NaiveDate, f64, String)> = Vec::new();
    let mut pts2: Vec<(NaiveDate, f64, String)> = Vec::new();
    if let Some(b) = &t.baseline {
        if let Some(s0) = b.target_sum_mm {
            pts1.push((b.scan_date, s0, "baseline".into()));
        }
    }
    let pd1 = date_of(&t.labels["pd1"]["date"]);
    if let (Some(p), Some(s)) = (pd1, t.pd1_target_sum_mm) {
        pts2.push((p, s, "PD1 re-baseline".into()));
    }
    for tp in &t.timepoints {
        if let Some(s) = tp.target_sum_mm {
            let pts = if tp.segment == 1 { &mut pts1 } else { &mut pts2 };
            pts.push((tp.date, s, tp.response.clone()));
        }
    }
    let ymax = pts1.iter().chain(&pts2).map(|p| p.1).fold(10.0_f64, f64::max) * 1.15;
    let y = |v: f64| PLOT_TOP + PLOT_H - v / ymax * PLOT_H;
    let _ = write!(
        o,
        "<g class=\"axis\"><line x1=\"{L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/><line x1=\"{L}\" y1=\"{PLOT_TOP}\" x2=\"{L}\" y2=\"{}\" stroke=\"#888\"/>\
<text x=\"8\" y=\"{}\" >target sum</text><text x=\"8\" y=\"{}\">(mm)</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text></g>",
        PLOT_TOP + PLOT_H,
        W - R,
        PLOT_TOP + PLOT_H,
        PLOT_TOP + PLOT_H,
        PLOT_TOP + 40.0,
        PLOT_TOP + 54.0,
        L - 4.0,
        PLOT_TOP + 10.0,
        ymax,
        L - 4.0,
        PLOT_TOP + PLOT_H
    );
    // Year ticks.
    for year in start.format("%Y").to_string().parse::<i32>().unwrap_or(2000)..=end.format("%Y").to_string().parse::<i32>().unwrap_or(2000) + 1 {
        if let Some(d) = NaiveDate::from_ymd_opt(year, 1, 1).filter(|d| *d >= start && *d <= end) {
            let _ = write!(
                o,
                "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#666\">{year}</text>",
                x(d),
                PLOT_TOP,
                height - 24.0,
                height - 10.0
            );
        }
    }
    for (class, pts, colour) in [("target-sum seg1", &pts1, "#1f5fa8"), ("target-sum seg2", &pts2, "#b35900")] {
        if pts.is_empty() {
            continue;
        }
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, x(p.0), y(p.1)))
            .collect();
        let _ = write!(o, "<path class=\"{class}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>", d.join(" "));
        for p in pts.iter() {
            let _ = write!(
                o,
                "<g class=\"response\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{} {}: {} mm</title></circle><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                x(p.0),
                y(p.1),
                p.0,
                esc(&p.2),
                p.1,
                x(p.0),
                y(p.1) - 8.0,
                esc(if p.2 == "baseline" { "BL" } else if p.2.starts_with("PD1 ") { "" } else { &p.2 })
            );
        }
    }
    // Scans.
    for e in counting.iter().filter(|e| e["event_type"] == "imaging.assessed") {
        if let Some(d) = date_of(&e["occurred_on"]) {
            let _ = write!(
                o,
                "<line class=\"scan\" x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#555\"><title>scan {d}</title></line>",
                x(d),
                PLOT_TOP + PLOT_H + 4.0,
                PLOT_TOP + PLOT_H + 14.0
            );
        }
    }
    let _ = write!(o, "<text x=\"8\" y=\"{}\">scans</text>", PLOT_TOP + PLOT_H + 14.0);
    // Drugs.
    let _ = write!(o, "<g class=\"drugs\"><text x=\"8\" y=\"{}\">drugs</text>", drug_top + 12.0);
    for (i, b) in drugs.iter().enumerate() {
        let top = drug_top + 22.0 * i as f64;
        let colour = if b.label == "crizotinib" { "#2e8b57" } else { "#7a5195" };
        let _ = write!(
            o,
            "<rect class=\"drug\" x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"16\" fill=\"{colour}\" opacity=\"{}\"><title>{} {} → {}</title></rect><text x=\"{:.1}\" y=\"{}\" fill=\"#fff\">{}</text>",
            x(b.from),
            (x(b.to) - x(b.from)).max(2.0),
            if b.open { "0.6" } else { "0.9" },
            esc(&b.label),
            b.from,
            if b.open { "ongoing".to_owned() } else { b.to.to_string() },
            x(b.from) + 3.0,
            top + 12.0,
            esc(&b.label)
        );
    }
    o.push_str("</g>");
    // Radiotherapy.
    let _ = write!(o, "<g class=\"radiotherapy\"><text x=\"8\" y=\"{}\">radiotherapy</text>", rt_top + 12.0);
    for (i, b) in rts.iter().enumerate() {
        let top = rt_top + 22.0 * i as f64;
        let _ = write!(
            o,
            "<rect class=\"rt\" x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"16\" fill=\"#c0392b\"><title>{} {} → {}</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text>",
            x(b.from),
            (x(b.to) - x(b.from)).max(3.0),
            esc(&b.label),
            b.from,
            b.to,
            x(b.to) + 5.0,
            top + 12.0,
            esc(&b.label)
        );
    }
    o.push_str("</g>");
    // Markers.
    let markers = [
        ("t0", "T0", date_of(&t.labels["index_date"]), "#2e8b57"),
        ("pd1", "PD1", pd1, "#d62728"),
        ("pd2", "PD2", date_of(&t.labels["pd2"]["date"]), "#d62728"),
        ("death", "death", date_of(&t.labels["death_date"]), "#000"),
    ];
    for (class, label, d, colour) in markers {
        if let Some(d) = d {
            let _ = write!(
                o,
                "<g class=\"marker {class}\"><line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"{colour}\" stroke-dasharray=\"5,3\"/><text x=\"{3:.1}\" y=\"{4}\" fill=\"{colour}\">{label} {d}</text></g>",
                x(d),
                PLOT_TOP,
                height - 24.0,
                x(d) + 3.0,
                PLOT_TOP + 10.0
            );
        }
    }
    o.push_str("</svg>");
    o
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

/// `/ui/login?token=…`: a browser cannot send a bearer header on navigation, so the token is
/// taken once and kept in an HttpOnly, SameSite=Strict cookie; then to `/`.
pub(crate) async fn login(State(st): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    if st.cfg.tokens.lookup(&token).is_none() {
        let body = "<h1>Sign in</h1><p class=\"err\">Unknown token.</p><form method=\"get\" action=\"/ui/login\"><label>Token <input type=\"password\" name=\"token\"></label> <button>Sign in</button></form>";
        return (StatusCode::UNAUTHORIZED, page("Sign in", "", body)).into_response();
    }
    let mut r = Redirect::to("/").into_response();
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => (StatusCode::BAD_REQUEST, "token has characters a cookie cannot carry\n").into_response(),
    }
}

/// `/ui/logout`: clears the cookie.
pub(crate) async fn logout() -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("registry_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
