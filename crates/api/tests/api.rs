//! The HTTP API over a real sled store filled through ingest and the projector with a synthetic
//! cohort: authentication, site scoping, labels equal to `registry labels`, views, filters,
//! the OpenAPI document against the router, metrics exposition, limits.

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Days, NaiveDate};
use registry_api::{ApiConfig, ROUTES, UNMATCHED_HEADER};
use registry_domain::view::View;
use serde_json::Value;
use support::{get, send, Fixture, ALL, FUSCC, PUMCH};

fn labels_line(f: &Fixture, view: &View, id: &str) -> Option<String> {
    let p = f.projector.labels_in_view(view, Some(id)).expect("labels");
    p.first().map(|p| p.labels.to_json_line())
}

#[tokio::test]
async fn every_route_but_health_needs_a_known_token() {
    let f = Fixture::new(6);
    let app = f.app();
    let id = &f.sites()[0].0;
    for route in ROUTES {
        let uri = route.replace("{id}", id);
        let a = get(&app, &uri, None).await;
        match *route {
            "/healthz" | "/readyz" => assert_eq!(a.status, StatusCode::OK, "{route}"),
            // The login page checks the token itself: without one it refuses.
            "/ui/login" => assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{route}"),
            _ => {
                assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{route} without a token");
                assert!(a.headers.contains_key("www-authenticate"), "{route}");
                let wrong = get(&app, &uri, Some("not-a-token-at-all-xxxxx")).await;
                assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{route} with an unknown token");
            }
        }
    }
    assert_eq!(get(&app, "/patients", Some(ALL)).await.status, StatusCode::OK);
    // A different scheme is not a bearer token.
    let req = Request::builder().uri("/patients").header("authorization", format!("Basic {ALL}")).body(Body::empty());
    assert_eq!(send(&app, req.expect("request")).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_site_token_sees_only_its_sites_patients() {
    let f = Fixture::new(30);
    let app = f.app();
    let sites = f.sites();
    let fuscc: BTreeSet<String> = sites.iter().filter(|(_, s)| s == "fuscc").map(|(p, _)| p.clone()).collect();
    let other = sites.iter().find(|(_, s)| s != "fuscc").map(|(p, _)| p.clone()).expect("a patient of another site");
    assert!(!fuscc.is_empty());
    let q = format!("?as_of={}", f.cutoff);

    let list = get(&app, &format!("/patients{q}"), Some(FUSCC)).await.json();
    let ids: BTreeSet<String> =
        list["patients"].as_array().expect("list").iter().map(|l| l["patient_id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids, fuscc, "the fuscc token lists exactly the fuscc patients");
    let all = get(&app, &format!("/patients{q}"), Some(ALL)).await.json();
    assert_eq!(all["count"].as_u64(), Some(sites.len() as u64));

    // Another site's patient: 404 on every patient route, as if it did not exist.
    for uri in [format!("/patients/{other}{q}"), format!("/patients/{other}/timeline{q}"), format!("/ui/patients/{other}{q}")] {
        assert_eq!(get(&app, &uri, Some(FUSCC)).await.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(get(&app, &uri, Some(ALL)).await.status, StatusCode::OK, "{uri}");
    }
    let own = fuscc.iter().next().expect("one");
    assert_eq!(get(&app, &format!("/patients/{own}{q}"), Some(FUSCC)).await.status, StatusCode::OK);
    assert_eq!(get(&app, &format!("/patients/{own}{q}"), Some(PUMCH)).await.status, StatusCode::NOT_FOUND);

    // Operational metrics are registry-wide: 403 for a site token.
    assert_eq!(get(&app, "/metrics", Some(FUSCC)).await.status, StatusCode::FORBIDDEN);

    // Alerts: only the site's patients.
    let alerts = get(&app, "/alerts", Some(FUSCC)).await.json();
    let all_alerts = get(&app, "/alerts", Some(ALL)).await.json();
    assert!(all_alerts["count"].as_u64().expect("count") > alerts["count"].as_u64().expect("count"));
    for a in alerts["alerts"].as_array().expect("alerts") {
        assert!(fuscc.contains(a["patient_id"].as_str().expect("pid")), "{a}");
    }

    // The report is computed on the visible subset.
    let report = get(&app, &format!("/cohort/report{q}"), Some(FUSCC)).await.json();
    assert_eq!(report["n_patients"].as_u64(), Some(fuscc.len() as u64));
    let csv = get(&app, &format!("/cohort/adtte.csv{q}"), Some(FUSCC)).await.body;
    for row in csv.lines().skip(1) {
        let pid = row.split(',').next().expect("USUBJID");
        assert!(fuscc.contains(pid), "{pid} in the fuscc export");
    }

    // The dashboard list too.
    let html = get(&app, "/ui/patients", Some(FUSCC)).await.body;
    assert!(!html.contains(&format!(">{other}<")), "another site's patient on the dashboard");
}

#[tokio::test]
async fn labels_are_byte_for_byte_those_of_registry_labels() {
    let f = Fixture::new(20);
    let app = f.app();
    let view = View::as_of(f.cutoff);
    let q = format!("?as_of={}", f.cutoff);
    let mut from_list = Vec::new();
    for (id, _) in f.sites() {
        let a = get(&app, &format!("/patients/{id}{q}"), Some(ALL)).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["content-type"], "application/json");
        let want = labels_line(&f, &view, &id).expect("listed");
        assert_eq!(a.body, format!("{want}\n"), "{id}");
        from_list.push(want);
    }
    let list = get(&app, &format!("/patients{q}"), Some(ALL)).await.json();
    let got: Vec<String> = list["patients"]
        .as_array()
        .expect("patients")
        .iter()
        .map(|l| serde_json::to_string(l).expect("json"))
        .collect();
    assert_eq!(got, from_list, "the list holds the same objects, sorted by patient_id");
    assert_eq!(list["as_of"], f.cutoff.to_string());
}

#[tokio::test]
async fn as_of_and_known_at_change_the_answers() {
    let f = Fixture::new(40);
    let app = f.app();
    let view = View::as_of(f.cutoff);
    let with_pd1 = f
        .projector
        .labels_in_view(&view, None)
        .expect("labels")
        .into_iter()
        .find_map(|p| p.labels.pd1.as_ref().map(|pd| (p.patient_id.as_str().to_owned(), pd.date)))
        .expect("a patient with PD1");
    let (id, pd1) = with_pd1;
    let before = pd1.checked_sub_days(Days::new(1)).expect("date");
    let now = get(&app, &format!("/patients/{id}?as_of={}", f.cutoff), Some(ALL)).await.json();
    let then = get(&app, &format!("/patients/{id}?as_of={before}"), Some(ALL)).await.json();
    assert_eq!(now["pd1"]["date"], pd1.to_string());
    assert!(then["pd1"].is_null(), "PD1 is not known the day before it: {then}");
    assert_eq!(
        get(&app, &format!("/patients/{id}?as_of={before}"), Some(ALL)).await.body,
        format!("{}\n", labels_line(&f, &View::as_of(before), &id).expect("listed"))
    );
    // The timeline in the earlier view stops at its cut-off.
    let tl = get(&app, &format!("/patients/{id}/timeline?as_of={before}"), Some(ALL)).await.json();
    for e in tl["events"].as_array().expect("events") {
        if e["event"]["event_type"] != "event.retracted" {
            assert!(e["event"]["occurred_on"].as_str().expect("date") <= before.to_string().as_str());
        }
    }
    // Before anything was received: nobody is listed.
    let early = chrono::DateTime::from_timestamp_micros(f.received_micros - 1_000_000).expect("time");
    let known = early.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = get(&app, &format!("/patients/{id}?as_of={}&known_at={known}", f.cutoff), Some(ALL)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let list = get(&app, &format!("/patients?known_at={known}"), Some(ALL)).await.json();
    assert_eq!(list["count"], 0);
    // Bad view parameters are a clear 400.
    for bad in ["as_of=2018-13-01", "known_at=yesterday"] {
        let a = get(&app, &format!("/patients?{bad}"), Some(ALL)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(a.json()["error"].as_str().is_some());
    }
}

#[tokio::test]
async fn filters_select_on_pattern_brain_and_radiotherapy() {
    let f = Fixture::new(60);
    let app = f.app();
    let q = format!("as_of={}", f.cutoff);
    let all = get(&app, &format!("/patients?{q}"), Some(ALL)).await.json();
    let all = all["patients"].as_array().expect("list").clone();
    type Want = fn(&Value) -> bool;
    let cases: [(&str, Want); 7] = [
        ("pattern=OF", |l| l["pd1"]["pattern"] == "OF"),
        ("pattern=DF", |l| l["pd1"]["pattern"] == "DF"),
        ("bbm=true", |l| l["baseline"]["bbm"] == true),
        ("prior_brain_rt=true", |l| l["rt"]["prior_brain"] == true),
        ("salvage_rt=false", |l| l["rt"]["salvage"] == false),
        ("any_rt=true", |l| l["rt"]["any"] == true),
        ("status=indexed", |l| l["status"] == "indexed"),
    ];
    for (filter, want) in cases {
        let got = get(&app, &format!("/patients?{q}&{filter}"), Some(ALL)).await.json();
        let got = got["patients"].as_array().expect("list").clone();
        let expected: Vec<Value> = all.iter().filter(|l| want(l)).cloned().collect();
        assert_eq!(got, expected, "{filter}");
    }
    let both = get(&app, &format!("/patients?{q}&bbm=true&any_rt=true"), Some(ALL)).await.json();
    for l in both["patients"].as_array().expect("list") {
        assert!(l["baseline"]["bbm"] == true && l["rt"]["any"] == true);
    }
    assert_eq!(get(&app, "/patients?pattern=XX", Some(ALL)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&app, "/patients?bbm=maybe", Some(ALL)).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn timeline_orders_events_and_carries_responses_and_target_sums() {
    let f = Fixture::new(25);
    let app = f.app();
    let view = View::as_of(f.cutoff);
    let mut checked_sums = 0;
    for p in f.projector.labels_in_view(&view, None).expect("labels") {
        let id = p.patient_id.as_str();
        let tl = get(&app, &format!("/patients/{id}/timeline?as_of={}", f.cutoff), Some(ALL)).await.json();
        let events = tl["events"].as_array().expect("events");
        let keys: Vec<(String, u64)> = events
            .iter()
            .map(|e| (e["event"]["occurred_on"].as_str().expect("date").to_owned(), e["seq"].as_u64().expect("seq")))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{id}: ordered by occurred_on then arrival");
        let tps = tl["timepoints"].as_array().expect("timepoints");
        assert_eq!(tps.len(), p.timepoints.len(), "{id}");
        for (got, want) in tps.iter().zip(&p.timepoints) {
            assert_eq!(got["date"], want.date.to_string());
            assert_eq!(got["segment"], want.segment);
            assert_eq!(got["response"], want.response.as_str());
            // S per time point is the projection's.
            assert_eq!(got["target_sum_mm"].as_f64(), want.target_sum_mm, "{id}");
            assert_eq!(got["all_targets_evaluated"], want.all_targets_evaluated, "{id}");
        }
        assert_eq!(tl["labels"], serde_json::to_value(&p.labels).expect("labels"));
        assert_eq!(tl["pd1_target_sum_mm"].as_f64(), p.pd1_target_sum_mm, "{id}");
        assert_eq!(tl["pd1_target_sum_mm"].is_null(), p.labels.pd1.is_none() || p.pd1_target_sum_mm.is_none(), "{id}");
        let want = p.labels.baseline.as_ref().and_then(|b| b.target_sum_mm);
        if want.is_some() {
            checked_sums += 1;
            assert_eq!(tl["baseline"]["target_sum_mm"].as_f64(), want);
        }
        // A time point called PR has S ≤ 0.7 S0 when every target was evaluated (RECIST 1.1).
        for tp in tps.iter().filter(|t| t["segment"] == 1 && t["response"] == "PR" && t["all_targets_evaluated"] == true) {
            let s = tp["target_sum_mm"].as_f64().expect("sum");
            assert!(s <= 0.7 * want.expect("S0") + 1e-6, "{id}: PR at {} with S {s}", tp["date"]);
        }
    }
    assert!(checked_sums > 10, "enough patients with targets ({checked_sums})");
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_of_the_router() {
    let f = Fixture::new(3);
    let app = f.app();
    let doc = get(&app, "/openapi.json", Some(ALL)).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"].as_object().expect("paths").keys().cloned().collect();
    let routed: BTreeSet<String> = ROUTES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(documented, routed);
    let id = &f.sites()[0].0;
    for path in &documented {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documents its GET");
        let uri = path.replace("{id}", id);
        let a = get(&app, &uri, Some(ALL)).await;
        assert!(!a.headers.contains_key(UNMATCHED_HEADER), "{path} is served by the router");
        // Every documented status includes the one we got (400/401/429 are common responses).
        let statuses = doc["paths"][path]["get"]["responses"].as_object().expect("responses");
        assert!(statuses.contains_key(a.status.as_str()), "{path}: {} not documented", a.status);
    }
    let a = get(&app, "/no/such/route", Some(ALL)).await;
    assert!(a.headers.contains_key(UNMATCHED_HEADER));
    // Every operation is documented with the view parameters.
    for path in &documented {
        let params = doc["paths"][path]["get"]["parameters"].to_string();
        assert!(params.contains("as_of") && params.contains("known_at"), "{path}");
    }
}

#[tokio::test]
async fn metrics_are_a_valid_prometheus_exposition() {
    let f = Fixture::new(10);
    let app = f.app();
    let _ = get(&app, "/patients", Some(ALL)).await;
    let a = get(&app, "/metrics", Some(ALL)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers["content-type"].to_str().expect("ascii").starts_with("text/plain; version=0.0.4"));
    let mut typed = BTreeSet::new();
    let mut samples = Vec::new();
    for line in a.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().expect("name");
            assert!(matches!(it.next(), Some("counter" | "gauge")), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        // name{label="value",…} number
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line without value: {line}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("value not a number: {line}"));
        let name = series.split('{').next().expect("name");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for kv in labels[1..labels.len() - 1].split(',') {
                let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("label {kv} in {line}"));
                assert!(!k.is_empty() && v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        assert!(typed.contains(name), "{name} has a TYPE line before its samples");
        samples.push((series.to_owned(), value.to_owned()));
    }
    let value = |s: &str| samples.iter().find(|(k, _)| k == s).map(|(_, v)| v.clone());
    let n_events = f.projector.store().len();
    assert_eq!(value("registry_events_ingested_total"), Some(n_events.to_string()));
    assert_eq!(value("registry_events_rejected_total{reason=\"malformed\"}"), Some("1".into()));
    assert_eq!(value("registry_projection_lag_events"), Some("0".into()));
    assert!(samples.iter().any(|(k, _)| k.starts_with("registry_alerts_total{kind=")));
    assert!(samples.iter().any(|(k, _)| k == "registry_http_requests_total{route=\"/patients\",status=\"200\"}"));
    // No patient identifier anywhere in the exposition.
    for (id, _) in f.sites() {
        assert!(!a.body.contains(&id), "{id} in metrics");
    }
}

#[tokio::test]
async fn alerts_since_returns_later_alerts_oldest_first() {
    let f = Fixture::new(20);
    let app = f.app();
    let all = get(&app, "/alerts", Some(ALL)).await.json();
    let list = all["alerts"].as_array().expect("alerts").clone();
    assert!(!list.is_empty());
    let times: Vec<&str> = list.iter().map(|a| a["raised_at"].as_str().expect("raised_at")).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    let future = get(&app, "/alerts?since=2999-01-01T00:00:00Z", Some(ALL)).await.json();
    assert_eq!(future["count"], 0);
    let past = get(&app, "/alerts?since=2000-01-01T00:00:00Z&limit=2", Some(ALL)).await.json();
    assert_eq!(past["count"], 2);
    let kind = list[0]["kind"].as_str().expect("kind");
    let only = get(&app, &format!("/alerts?kind={kind}"), Some(ALL)).await.json();
    assert!(only["alerts"].as_array().expect("alerts").iter().all(|a| a["kind"] == kind));
    assert_eq!(get(&app, "/alerts?since=last-week", Some(ALL)).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn report_and_adtte_are_the_report_crates_over_the_view() {
    let f = Fixture::new(30);
    let app = f.app();
    let r = get(&app, &format!("/cohort/report?as_of={}", f.cutoff), Some(ALL)).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    for key in ["as_of", "known_at", "n_patients", "n_indexed", "orr", "dcr", "pfs1", "pfs2", "os", "patterns", "comparisons"] {
        assert!(j.get(key).is_some(), "report key {key}");
    }
    assert_eq!(j["as_of"], f.cutoff.to_string());
    assert_eq!(j["n_patients"].as_u64(), Some(f.sites().len() as u64));
    let early: NaiveDate = NaiveDate::from_ymd_opt(2015, 1, 1).expect("date");
    let r2 = get(&app, &format!("/cohort/report?as_of={early}"), Some(ALL)).await.json();
    assert_ne!(r2["n_patients"], j["n_patients"], "an earlier cut-off lists fewer patients");
    let csv = get(&app, &format!("/cohort/adtte.csv?as_of={}", f.cutoff), Some(ALL)).await;
    assert!(csv.headers["content-type"].to_str().expect("ascii").starts_with("text/csv"));
    assert!(csv.body.starts_with("USUBJID,PARAMCD,PARAM,STARTDT,ADT,AVAL,CNSR,EVNTDESC,BBM,BBMCLASS,PRIORBRT,SALVRT,CBPD,ANYRT,PATTERN\n"));
    assert!(csv.body.lines().count() > f.sites().len());
}

#[tokio::test]
async fn dashboard_pages_are_self_contained_and_the_login_cookie_is_strict() {
    let f = Fixture::new(15);
    let app = f.app();
    let login = get(&app, &format!("/ui/login?token={ALL}"), None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let cookie = login.headers["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let with_cookie = |uri: String| {
        Request::builder().uri(uri).header("cookie", pair.clone()).body(Body::empty()).expect("request")
    };
    let home = send(&app, with_cookie(format!("/?as_of={}", f.cutoff))).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<svg"), "overview has the report's figures");
    assert!(home.body.contains("fig-pfs1") && home.body.contains("fig-os") && home.body.contains("fig-cif"));
    let id = &f.sites()[0].0;
    assert!(home.body.contains(&format!("/ui/patients/{id}")));
    let page = send(&app, with_cookie(format!("/ui/patients/{id}?as_of={}", f.cutoff))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg id=\"timeline\""));
    for (what, body) in [("overview", &home.body), ("timeline", &page.body)] {
        let stripped = body.replace("http://www.w3.org/2000/svg", "");
        assert!(!stripped.contains("http://") && !stripped.contains("https://"), "{what} has an external URL");
        assert!(!body.contains("<script"), "{what} has a script");
    }
    let list = send(&app, with_cookie(format!("/ui/patients?bbm=true&as_of={}", f.cutoff))).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("name=\"bbm\"") && list.body.contains("name=\"pattern\""));
    assert_eq!(get(&app, "/ui/login?token=wrong-token-xxxxxxxxxxxx", None).await.status, StatusCode::UNAUTHORIZED);
    let out = get(&app, "/ui/logout", Some(ALL)).await;
    assert!(out.headers["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"));
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_to_retry_and_big_bodies_are_refused() {
    let f = Fixture::new(2);
    let app = f.app_with(ApiConfig { rate_per_sec: 0.001, rate_burst: 3.0, ..f.config() });
    for _ in 0..3 {
        assert_eq!(get(&app, "/openapi.json", Some(ALL)).await.status, StatusCode::OK);
    }
    let limited = get(&app, "/openapi.json", Some(ALL)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(get(&app, "/healthz", None).await.status, StatusCode::OK, "health is never limited");

    let app = f.app();
    let big = vec![b'x'; 1 << 20];
    let req = Request::builder()
        .uri("/patients")
        .header("authorization", format!("Bearer {ALL}"))
        .header("content-length", big.len())
        .body(Body::from(big))
        .expect("request");
    assert_eq!(send(&app, req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_cached_patient_answer_gives_way_to_an_append() {
    let f = Fixture::new(6);
    let app = f.app();
    let view = View::as_of(f.cutoff);
    let p = f
        .projector
        .labels_in_view(&view, None)
        .expect("labels")
        .into_iter()
        .find(|p| p.labels.death_date.is_none())
        .expect("a living patient");
    let id = p.patient_id.as_str().to_owned();
    let uri = format!("/patients/{id}?as_of={}", f.cutoff);
    let first = get(&app, &uri, Some(ALL)).await;
    assert_eq!(get(&app, &uri, Some(ALL)).await.body, first.body, "the same answer twice (the second from the cache)");
    assert!(first.json()["death_date"].is_null());
    // A death is appended to the log: the next answer is recomputed and shows it.
    let site = registry_domain::events::SiteId::parse(&f.sites().into_iter().find(|(p, _)| *p == id).expect("site").1).expect("site id");
    let death = registry_domain::events::Event {
        event_id: uuid::Uuid::from_u128(0xdead_0001),
        patient_id: p.patient_id.clone(),
        site_id: site,
        occurred_on: f.cutoff,
        recorded_at: chrono::DateTime::parse_from_rfc3339(&format!("{}T12:00:00Z", f.cutoff)).expect("time"),
        supersedes: None,
        payload: registry_domain::events::Payload::DeathRecorded(registry_domain::events::Death {
            cause: registry_domain::events::DeathCause::Disease,
        }),
    };
    let bytes = death.canonical_json();
    let input = registry_ingest::RawInput { bytes: &bytes, source: "test:death", subject_site: None, stream_seq: None };
    registry_ingest::ingest_batch(f.projector.store(), &[input], chrono::Utc::now().timestamp_micros()).expect("ingest");
    let after = get(&app, &uri, Some(ALL)).await;
    assert_eq!(after.json()["death_date"], f.cutoff.to_string(), "the append retired the cached answer");
    assert_eq!(after.body, format!("{}\n", labels_line(&f, &view, &id).expect("listed")));
}

#[tokio::test]
async fn a_retraction_naming_another_patients_event_does_not_lend_its_site() {
    // Patient B (fuscc) retracts an event of patient A (another site) stored before any of B's:
    // B's events as read for a refold then start with A's event. B must stay a fuscc patient
    // for access, on the stored-record path and on the refold path alike.
    let f = Fixture::new(30);
    let store = f.projector.store();
    let first_of = |id: &str| {
        let ev = f.projector.patient_events(id).expect("events");
        let first = ev.into_iter().filter(|e| e.event.patient_id.as_str() == id).min_by_key(|e| e.seq).expect("one");
        (first.seq, first.event.event_id)
    };
    let sites = f.sites();
    let (b, _) = sites.iter().filter(|(_, s)| s == "fuscc").max_by_key(|(p, _)| first_of(p).0).expect("a fuscc patient");
    let (a, a_site) = sites.iter().find(|(p, s)| s != "fuscc" && first_of(p).0 < first_of(b).0).expect("an earlier patient elsewhere");
    let retraction = serde_json::json!({
        "event_id": "7e57e57e-0000-4000-8000-00000000b0b0", "event_type": "event.retracted", "schema_version": 1,
        "patient_id": b, "site_id": "fuscc", "occurred_on": f.cutoff.to_string(),
        "recorded_at": format!("{}T09:00:00Z", f.cutoff), "supersedes": null,
        "payload": {"target_event_id": first_of(a).1.to_string(), "reason": "entered for the wrong patient"}
    });
    let bytes = serde_json::to_vec(&retraction).expect("json");
    let input = registry_ingest::RawInput { bytes: &bytes, source: "test:cross", subject_site: None, stream_seq: None };
    let outcome = registry_ingest::ingest_batch(store, &[input], chrono::Utc::now().timestamp_micros()).expect("ingest");
    assert!(matches!(outcome[0], registry_ingest::InputOutcome::Accepted { .. }), "{outcome:?}");
    f.projector.catch_up(f.cutoff).expect("catch up");
    let record: Value = serde_json::from_slice(&store.get_labels(b).expect("read").expect("stored")).expect("record");
    assert_eq!(record["serves"]["site"], "fuscc", "the stored record's site");

    let app = f.app();
    let other_token = if a_site == "pumch" { Some(PUMCH) } else { None };
    for q in [format!("?as_of={}", f.cutoff), format!("?as_of={}", f.cutoff.checked_sub_days(Days::new(1)).expect("day"))] {
        for uri in [format!("/patients/{b}{q}"), format!("/patients/{b}/timeline{q}")] {
            assert_eq!(get(&app, &uri, Some(FUSCC)).await.status, StatusCode::OK, "{uri} for its own site");
            if let Some(t) = other_token {
                assert_eq!(get(&app, &uri, Some(t)).await.status, StatusCode::NOT_FOUND, "{uri} for {a_site}");
            }
        }
    }
    let list = get(&app, &format!("/patients?as_of={}", f.cutoff), Some(FUSCC)).await.json();
    assert!(list["patients"].as_array().expect("list").iter().any(|l| l["patient_id"] == b.as_str()), "listed for fuscc");
}

#[tokio::test]
async fn rejections_are_listed_per_site_filtered_and_paged() {
    let f = Fixture::new(4);
    let store = f.projector.store();
    // The fixture kept one malformed file input (no site); two more come from two sites' subjects.
    let at = f.received_micros + 1_000_000;
    for (site, bytes) in [("fuscc", &b"{\"event_id\": 1"[..]), ("pumch", &b"[]"[..])] {
        let subject = format!("registry.events.{site}.followup.recorded");
        let input = registry_ingest::RawInput { bytes, source: &subject, subject_site: Some(site), stream_seq: None };
        registry_ingest::ingest_batch(store, &[input], at).expect("ingest");
    }
    let app = f.app();
    let ids = |v: &Value| -> Vec<u64> {
        v["rejections"].as_array().expect("list").iter().map(|r| r["id"].as_u64().expect("id")).collect()
    };

    let all = get(&app, "/rejections", Some(ALL)).await.json();
    assert_eq!((all["count"].as_u64(), ids(&all)), (Some(3), vec![1, 2, 3]), "{all}");
    let fuscc = &all["rejections"][1];
    assert_eq!(fuscc["site"], "fuscc");
    assert_eq!(fuscc["source"], "registry.events.fuscc.followup.recorded");
    assert_eq!(fuscc["reason"], "malformed");
    assert_eq!(fuscc["raw"], "{\"event_id\": 1");
    assert!(all["rejections"][0]["site"].is_null(), "a file input that names no site");
    assert_eq!(all["rejections"][2]["reason"], "schema");

    // A site's token reads its own site's rejections only, and may not ask for another's.
    assert_eq!(ids(&get(&app, "/rejections", Some(FUSCC)).await.json()), [2]);
    assert_eq!(ids(&get(&app, "/rejections", Some(PUMCH)).await.json()), [3]);
    assert_eq!(get(&app, "/rejections?site=pumch", Some(FUSCC)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(ids(&get(&app, "/rejections?site=pumch", Some(ALL)).await.json()), [3]);

    assert_eq!(ids(&get(&app, "/rejections?reason=malformed", Some(ALL)).await.json()), [1, 2]);
    assert_eq!(get(&app, "/rejections?reason=nope", Some(ALL)).await.status, StatusCode::BAD_REQUEST);
    let page = get(&app, "/rejections?limit=2", Some(ALL)).await.json();
    assert_eq!((ids(&page), page["next_after"].as_u64()), (vec![1, 2], Some(2)));
    let rest = get(&app, "/rejections?limit=2&after=2", Some(ALL)).await.json();
    assert_eq!((ids(&rest), rest["next_after"].is_null()), (vec![3], true));
    // known_at: what the registry had by an instant (the sites' inputs came a second later).
    let before = chrono::DateTime::from_timestamp_micros(f.received_micros).expect("time").to_rfc3339();
    let then = get(&app, &format!("/rejections?known_at={}", before.replace('+', "%2B")), Some(ALL)).await.json();
    assert_eq!(ids(&then), [1], "{then}");

    // The dashboard's overview lists the open ones of the token's scope.
    let q = format!("?as_of={}", f.cutoff);
    let home = get(&app, &format!("/{q}"), Some(ALL)).await.body;
    assert!(home.contains("Rejected inputs to fix") && home.contains("Latest 3 of 3 not yet sent again fixed"), "{home}");
    assert!(home.contains("registry.events.fuscc.followup.recorded") && home.contains("registry.events.pumch.followup.recorded"));
    let fuscc_home = get(&app, &format!("/{q}"), Some(FUSCC)).await.body;
    assert!(fuscc_home.contains("registry.events.fuscc.followup.recorded"), "{fuscc_home}");
    assert!(!fuscc_home.contains("pumch.followup") && !fuscc_home.contains("test:bad"), "another site's rejections leak");
}
