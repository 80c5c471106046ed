//! Label queries over NATS request/reply (docs/bus.md, "Label queries"), against a real
//! nats-server running deploy/nats-sites.conf: the services run as their own users, the api user
//! asks `registry.query.labels`, a hospital's user may not ask at all.
//!
//! The pages of the whole cohort, put together, must equal byte for byte what `registry labels`
//! prints for a `registry import` of the same events in the same view.

mod bus_support;

use std::time::Duration;

use bus_support::*;

const WITHIN: Duration = Duration::from_secs(20);

fn field(line: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {line}")).to_owned()
}

fn error_code(reply: &Reply) -> String {
    assert_eq!(reply.header("Registry-Status"), Some("error"), "{reply:?}");
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).expect("an error is one JSON object");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

#[test]
fn the_projector_answers_label_queries_for_the_api_and_a_site_may_not_ask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines = synth_lines(80, 4242, None);
    let file = tmp.path().join("cohort.ndjson");
    write_lines(&file, &lines);
    let import_dir = tmp.path().join("import");
    let reference = import(&file, &import_dir);

    let nats = start_sites_server();
    let url = nats.url();
    let admin = Bus::connect_with(as_user(&url, "admin")).expect("admin connects");
    let (mut ingest, mut projector) = services_as_users(&url, tmp.path());
    ingest.start();
    projector.start();
    poll_until("the EVENTS stream", Duration::from_secs(60), || admin.stream_len("EVENTS"), |n| n.map(|_| ()));
    // Each hospital publishes its own events, as its own user.
    let mut sites: Vec<String> = lines.iter().map(|l| field(l, "site_id")).collect();
    sites.sort();
    sites.dedup();
    for site in &sites {
        let bus = Bus::connect_with(as_user(&url, site)).expect("site connects");
        for line in lines.iter().filter(|l| field(l, "site_id") == *site) {
            let subject = registry_bus::subjects::events_subject(site, &field(line, "event_type")).expect("subject");
            bus.publish(&subject, &field(line, "event_id"), line.as_bytes()).expect("a site publishes its own events");
        }
    }
    wait_pipeline_drained(&admin, lines.len() as u64, Duration::from_secs(300), &mut [&mut ingest, &mut projector]);
    wait_success(reference, "registry import", Duration::from_secs(300));
    let expected = labels(&import_dir);
    let expected_lines: Vec<&[u8]> = expected.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    assert!(expected_lines.len() > 50, "a cohort of some size");

    let api = Bus::connect_with(as_user(&url, "api")).expect("api connects");
    let subject = registry_bus::subjects::LABELS_QUERY;
    assert_eq!(subject, "registry.query.labels");

    // The whole cohort, in pages of 25: the same bytes as `registry labels` of the import.
    let mut pages = 0;
    let mut after: Option<String> = None;
    let mut got = Vec::new();
    loop {
        let mut q = serde_json::json!({"as_of": AS_OF, "limit": 25});
        if let Some(a) = &after {
            q["after"] = serde_json::Value::String(a.clone());
        }
        let reply = api.request_full(subject, q.to_string().as_bytes(), WITHIN).expect("the projector answers");
        assert_eq!(reply.header("Registry-Status"), Some("ok"), "{:?}", String::from_utf8_lossy(&reply.payload));
        let count: usize = reply.header("Registry-Count").expect("count").parse().expect("a number");
        assert_eq!(count, reply.payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count());
        got.extend_from_slice(&reply.payload);
        pages += 1;
        match reply.header("Registry-Next-After") {
            Some(next) => {
                assert_eq!(count, 25, "only a full page has a next one");
                after = Some(next.to_owned());
            }
            None => break,
        }
        assert!(pages < 100, "paging ends");
    }
    assert!(pages >= 3, "{pages} pages");
    assert_same_labels(&got, &expected);

    // One patient: its line.
    let line = expected_lines[expected_lines.len() / 2];
    let patient = field(std::str::from_utf8(line).expect("UTF-8"), "patient_id");
    let q = serde_json::json!({"patient_id": patient, "as_of": AS_OF});
    let reply = api.request_full(subject, q.to_string().as_bytes(), WITHIN).expect("answer");
    assert_eq!(reply.header("Registry-Status"), Some("ok"));
    assert_eq!(reply.header("Registry-Count"), Some("1"));
    assert_eq!(reply.payload, [line, b"\n"].concat());

    // known_at before anything was received: nothing known yet, no labels.
    let q = serde_json::json!({"as_of": AS_OF, "known_at": "2000-01-01T00:00:00Z"});
    let reply = api.request_full(subject, q.to_string().as_bytes(), WITHIN).expect("answer");
    assert_eq!(reply.header("Registry-Status"), Some("ok"));
    assert_eq!(reply.header("Registry-Count"), Some("0"));
    assert!(reply.payload.is_empty());

    // Errors: one JSON object with a code.
    let ask = |payload: &[u8]| api.request_full(subject, payload, WITHIN).expect("answer");
    assert_eq!(error_code(&ask(br#"{"patient_id":"NOPE-0000","as_of":"2018-05-31"}"#)), "not_found");
    assert_eq!(error_code(&ask(br#"{"as_of":"31/05/2018"}"#)), "bad_request");
    assert_eq!(error_code(&ask(br#"{"known_at":"yesterday"}"#)), "bad_request");
    assert_eq!(error_code(&ask(br#"{"patient":"P1"}"#)), "bad_request");
    assert_eq!(error_code(&ask(b"not json")), "bad_request");

    // A hospital's user may not ask (deploy/nats-accounts.conf gives sites no registry.query.>):
    // the server drops the request and logs a violation; the site gets no answer.
    let site = Bus::connect_with(as_user(&url, &sites[0])).expect("site connects");
    let err = site
        .request_full(subject, br#"{"as_of":"2018-05-31"}"#, Duration::from_secs(3))
        .expect_err("a site may not query labels");
    assert!(!err.is_empty());
    poll_until(
        "the violation in the server log",
        Duration::from_secs(10),
        || nats.log(),
        |log| {
            log.lines()
                .any(|l| l.contains(&format!("user:{}", sites[0])) && l.contains("Publish Violation") && l.contains("registry.query.labels"))
                .then_some(())
        },
    );

    for service in [&mut ingest, &mut projector] {
        let status = service.sigterm(Duration::from_secs(30));
        assert!(status.success(), "{} stopped with {status}", service.name);
    }
}
