//! Hostile input: whatever bytes arrive, `parse_event` returns an event or a rejection with a reason
//! and a non-empty message. It never panics, never overflows the stack, never hangs on size.

use proptest::prelude::*;
use registry_domain::validate::{parse_event, RejectReason, Rejection, MAX_EVENT_BYTES};
use serde_json::{json, Value};

const VALID: &str = include_str!("../../../schemas/examples/valid/imaging.assessed.every_lesion_state.json");

fn rejected(raw: &[u8]) -> Rejection {
    match parse_event(raw) {
        Ok(e) => panic!("accepted {e:?}"),
        Err(r) => {
            assert!(!r.message.trim().is_empty(), "empty message for {}", r.reason);
            r
        }
    }
}

fn outcome_is_sane(raw: &[u8]) -> Result<(), TestCaseError> {
    if let Err(r) = parse_event(raw) {
        prop_assert!(!r.message.trim().is_empty(), "empty message for {}", r.reason);
        prop_assert!(RejectReason::ALL.contains(&r.reason));
        prop_assert!(r.message.chars().count() <= 401, "messages are bounded: {}", r.message.len());
    }
    Ok(())
}

#[test]
fn deep_nesting_is_malformed_not_a_stack_overflow() {
    // 100,000 nested arrays (200 KB) and 40,000 nested objects (240 KB): under the size limit, so
    // the parser itself must refuse them (serde_json's recursion limit of 128 stays on).
    for (open, close, n) in [("[", "]", 100_000), ("{\"a\":", "}", 40_000)] {
        let deep = format!("{}{}", open.repeat(n), close.repeat(n));
        assert!(deep.len() <= MAX_EVENT_BYTES);
        let r = rejected(deep.as_bytes());
        assert_eq!(r.reason, RejectReason::Malformed, "{r}");
        assert!(r.message.contains("recursion limit exceeded"), "{r}");
    }
    // Deep nesting inside an otherwise plausible envelope, and nesting just under the limit.
    let text = format!(r#"{{"payload": {{"x": {}1{}}}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(rejected(text.as_bytes()).reason, RejectReason::Malformed);
    let shallow = format!("{}{}", "[".repeat(120), "]".repeat(120));
    assert_eq!(rejected(shallow.as_bytes()).reason, RejectReason::Schema, "nesting under the limit is parsed, then refused as not an object");
}

#[test]
fn a_ten_megabyte_line_is_too_large() {
    let line = format!("{{\"reason\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let r = rejected(line.as_bytes());
    assert_eq!(r.reason, RejectReason::TooLarge);
    assert!(r.message.contains(&format!("{} bytes", line.len())), "{r}");
}

#[test]
fn invalid_utf8_is_malformed_with_its_byte_offset() {
    let mut raw = VALID.as_bytes().to_vec();
    let at = raw.iter().position(|b| *b == b'B').unwrap_or(0);
    raw[at] = 0xC3; // a lead byte with no continuation
    let r = rejected(&raw);
    assert_eq!(r.reason, RejectReason::Malformed);
    assert_eq!(r.message, format!("invalid UTF-8 at byte offset {at}"));
    for raw in [&b"\xff"[..], b"\xed\xa0\x80", b"{\"a\": \"\xc0\xaf\"}", b"\xef\xbb\xbf{}"] {
        assert_eq!(rejected(raw).reason, RejectReason::Malformed, "{raw:?}");
    }
}

#[test]
fn odd_but_well_formed_json_is_a_schema_rejection() {
    for raw in ["null", "0", "\"event\"", "[]", "{}", "[{}]", "1e400x", "true"] {
        let r = rejected(raw.as_bytes());
        assert!(matches!(r.reason, RejectReason::Schema | RejectReason::Malformed), "{raw}: {r}");
    }
    assert_eq!(rejected(b"").reason, RejectReason::Malformed);
    assert_eq!(rejected(b"1e400").reason, RejectReason::Malformed, "a number out of f64 range is not JSON we can read");
    assert_eq!(rejected(b"{} {}").reason, RejectReason::Malformed, "trailing data");
    assert_eq!(rejected(b"{\"a\": NaN}").reason, RejectReason::Malformed);
    assert!(rejected(b"{}").message.starts_with("/: \"event_id\" is a required property"));
}

#[test]
fn every_kind_of_schema_violation_is_rejected_with_a_pointer() {
    let base: Value = serde_json::from_str(VALID).expect("valid example");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/event_id", json!(42), "/event_id"),
        ("/patient_id", json!("Zhang San, MRN 0012345"), "/patient_id"),
        ("/occurred_on", json!("03/05/2016"), "/occurred_on"),
        ("/recorded_at", json!("yesterday"), "/recorded_at"),
        ("/payload/modality", json!("xray"), "/payload/modality"),
        ("/payload/regions", json!("brain"), "/payload/regions"),
        ("/payload/lesions", json!({}), "/payload/lesions"),
        ("/payload/lesions/0/diameter_mm", json!("8.5"), "/payload/lesions/0/diameter_mm"),
        ("/payload/lesions/0/primary", json!(1), "/payload/lesions/0/primary"),
        ("/payload/lesions/1/state", json!(null), "/payload/lesions/1/state"),
        ("/payload/lesions/2/lesion_id", json!("B 3"), "/payload/lesions/2/lesion_id"),
        ("/payload/lesions/4/organ", json!(["brain"]), "/payload/lesions/4/organ"),
        ("/payload/reported_response", json!("pr"), "/payload/reported_response"),
        ("/payload/name", json!("x"), "/payload"),
        ("/payload/lesions/3/dob", json!("1960-01-01"), "/payload/lesions/3"),
        ("/mrn", json!("x"), "/"),
    ];
    for (pointer, new, reported) in cases {
        let mut v = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        if let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.to_owned(), new);
        }
        let raw = serde_json::to_vec(&v).unwrap_or_default();
        let r = rejected(&raw);
        assert_eq!(r.reason, RejectReason::Schema, "{pointer}: {r}");
        assert!(r.message.starts_with(&format!("{reported}: ")), "{pointer}: {r}");
    }
}

#[test]
fn truncating_a_valid_event_at_every_byte_is_malformed() {
    let raw = VALID.trim_end().as_bytes();
    assert!(parse_event(raw).is_ok());
    for cut in 0..raw.len() {
        let r = rejected(&raw[..cut]);
        assert_eq!(r.reason, RejectReason::Malformed, "cut at {cut}: {r}");
        assert!(r.message.contains("line") || r.message.contains("UTF-8"), "cut at {cut}: {r}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        outcome_is_sane(&raw)?;
    }

    #[test]
    fn random_edits_of_a_valid_event_never_panic(pos in any::<prop::sample::Index>(), bytes in prop::collection::vec(any::<u8>(), 0..8), delete in 0usize..8) {
        let mut raw = VALID.as_bytes().to_vec();
        let at = pos.index(raw.len());
        let end = (at + delete).min(raw.len());
        raw.splice(at..end, bytes);
        outcome_is_sane(&raw)?;
    }

    #[test]
    fn random_json_never_panics(text in r#"[\[\]{}":,0-9a-z. \\-]{0,300}"#) {
        outcome_is_sane(text.as_bytes())?;
    }

    #[test]
    fn any_json_value_in_any_place_never_panics(pick in any::<prop::sample::Index>(), new in any_json()) {
        let mut v: Value = serde_json::from_str(VALID).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut pointers = Vec::new();
        collect(&v, String::new(), &mut pointers);
        let pointer = &pointers[pick.index(pointers.len())];
        if let Some(slot) = v.pointer_mut(pointer) { *slot = new; }
        outcome_is_sane(&serde_json::to_vec(&v).unwrap_or_default())?;
    }
}

fn collect(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| collect(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| collect(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
