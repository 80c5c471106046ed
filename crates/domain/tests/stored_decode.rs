//! The stored-event decoder (`stored::decode`, payload typed straight from the bytes) accepts and
//! refuses exactly what the former decoder (`stored::decode_via_value`, payload through a
//! `serde_json::Value`) did, and yields the same events: on the synthetic cohort, on every schema
//! example (valid and invalid), and on damaged variants of canonical events.

use std::path::PathBuf;

use registry_domain::stored::{decode, decode_via_value};
use registry_domain::synth::{generate, Profile, SynthConfig};
use serde_json::{json, Map, Value};

fn same(bytes: &[u8]) {
    let new = decode(bytes);
    let old = decode_via_value(bytes);
    match (&new, &old) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(bytes)),
        (Err(_), Err(_)) => {}
        _ => panic!("decoders disagree on {}: new {new:?}, old {old:?}", String::from_utf8_lossy(bytes)),
    }
}

fn canonical_events() -> Vec<Vec<u8>> {
    generate(&SynthConfig { patients: 150, seed: 11, profile: Profile::Ni2019 }).map(|e| e.canonical_json()).collect()
}

#[test]
fn synthetic_cohort_decodes_identically() {
    let events = canonical_events();
    assert!(events.len() > 1000);
    for b in &events {
        let e = decode(b).expect("canonical event decodes");
        assert_eq!(e, decode_via_value(b).expect("old decoder"));
        assert_eq!(e.canonical_json(), *b, "decode is the inverse of canonical_json");
    }
}

#[test]
fn schema_examples_agree() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/examples");
    let mut n = 0;
    for kind in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(kind)).expect("examples dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("example");
            same(&bytes);
            if let Ok(e) = decode(&bytes) {
                same(&e.canonical_json());
            }
            n += 1;
        }
    }
    assert!(n > 10, "examples found");
}

fn variants(obj: &Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in &keys {
        // each key missing
        let mut m = obj.clone();
        m.remove(k);
        out.push(Value::Object(m));
        // each key with a value of the wrong type
        for bad in [json!(null), json!(7), json!(1.5), json!("x"), json!([]), json!({}), json!(true), json!(-1)] {
            let mut m = obj.clone();
            m.insert(k.clone(), bad);
            out.push(Value::Object(m));
        }
    }
    // an unknown key
    let mut m = obj.clone();
    m.insert("extra".into(), json!(1));
    out.push(Value::Object(m));
    // payload before event_type (order of the keys)
    let mut m = Map::new();
    for k in keys.iter().rev() {
        m.insert(k.clone(), obj[k].clone());
    }
    out.push(Value::Object(m));
    // payload fields: each missing, each of a wrong type, an unknown one
    if let Some(Value::Object(p)) = obj.get("payload") {
        for k in p.keys() {
            let mut q = p.clone();
            q.remove(k);
            let mut m = obj.clone();
            m.insert("payload".into(), Value::Object(q));
            out.push(Value::Object(m));
            for bad in [json!(null), json!(3), json!(2.0), json!(2.5), json!("x"), json!([]), json!({})] {
                let mut q = p.clone();
                q.insert(k.clone(), bad);
                let mut m = obj.clone();
                m.insert("payload".into(), Value::Object(q));
                out.push(Value::Object(m));
            }
        }
        let mut q = p.clone();
        q.insert("extra".into(), json!(1));
        let mut m = obj.clone();
        m.insert("payload".into(), Value::Object(q));
        out.push(Value::Object(m));
    }
    // other schema versions and types
    for (k, v) in [
        ("schema_version", json!(2)),
        ("event_type", json!("nope.nope")),
        ("patient_id", json!("bad id")),
        ("site_id", json!("BAD")),
        ("recorded_at", json!("2016-01-01")),
        ("occurred_on", json!("2016-02-30")),
        ("supersedes", json!(null)),
    ] {
        let mut m = obj.clone();
        m.insert(k.into(), v);
        out.push(Value::Object(m));
    }
    out
}

#[test]
fn damaged_events_agree() {
    let events = canonical_events();
    // one event of each type (the first seen), every variant
    let mut seen = std::collections::BTreeSet::new();
    let mut tried = 0;
    for b in &events {
        let v: Value = serde_json::from_slice(b).expect("json");
        let t = v["event_type"].as_str().expect("type").to_owned();
        if !seen.insert(t) {
            continue;
        }
        let Value::Object(obj) = v else { panic!("object") };
        for variant in variants(&obj) {
            same(&serde_json::to_vec(&variant).expect("encode"));
            tried += 1;
        }
    }
    assert!(seen.len() >= 6, "event types covered: {seen:?}");
    assert!(tried > 100);
    // not JSON, trailing bytes, not an object
    for bad in [&b"{"[..], b"", b"[]", b"null", b"{} {}"] {
        same(bad);
    }
    let mut trailing = events[0].clone();
    trailing.extend_from_slice(b" x");
    same(&trailing);
}
