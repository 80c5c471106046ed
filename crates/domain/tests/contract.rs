//! Contract tests: the committed JSON Schemas (`schemas/`, read from disk, as feeders use them) and
//! the Rust types behind `parse_event` accept exactly the same events. Examples pin the documented
//! cases; proptests over the typed structs and their mutations pin "schema and types never drift".

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use proptest::prelude::*;
use registry_domain::events::*;
use registry_domain::validate::{
    check_embedded_schemas, check_resend, check_subject, parse_event, parse_value, RejectReason, Rejection, MAX_EVENT_BYTES,
    SCHEMA_BASE_URI, SCHEMA_FILES,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// The validator built from the files on disk, independently of the embedded copy.
fn disk_validator() -> &'static jsonschema::Validator {
    static V: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let mut options = jsonschema::options().should_validate_formats(true);
        let mut envelope = Value::Null;
        for entry in std::fs::read_dir(schemas_dir()).expect("schemas dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if !name.ends_with(".schema.json") {
                continue;
            }
            let contents: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("schema is JSON");
            assert_eq!(contents["$id"], json!(format!("{SCHEMA_BASE_URI}{name}")), "$id of {name}");
            if name == "envelope.schema.json" {
                envelope = contents.clone();
            }
            options = options.with_resource(format!("{SCHEMA_BASE_URI}{name}"), jsonschema::Resource::from_contents(contents).expect("resource"));
        }
        options.build(&envelope).expect("envelope schema compiles")
    })
}

fn schema_accepts(v: &Value) -> bool {
    disk_validator().is_valid(v)
}

fn read_examples(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(schemas_dir().join("examples").join(kind))
        .expect("examples dir")
        .map(|e| {
            let path = e.expect("entry").path();
            (path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned(), std::fs::read(&path).expect("read example"))
        })
        .filter(|(name, _)| name.ends_with(".json"))
        .collect();
    out.sort();
    out
}

fn assert_round_trip(event: &Event) {
    let canonical = event.canonical_json();
    let again = parse_event(&canonical).unwrap_or_else(|r| panic!("canonical JSON re-parses: {r}"));
    assert_eq!(&again, event, "canonical JSON re-parses to an equal event");
    assert_eq!(again.canonical_json(), canonical, "canonical JSON is a fixed point");
    let value: Value = serde_json::from_slice(&canonical).expect("canonical is JSON");
    assert!(schema_accepts(&value), "canonical JSON is schema-valid: {}", String::from_utf8_lossy(&canonical));
}

#[test]
fn embedded_schemas_compile_and_match_the_files_on_disk() {
    assert_eq!(check_embedded_schemas(), Ok(()));
    let mut on_disk: Vec<String> = std::fs::read_dir(schemas_dir())
        .expect("schemas dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = SCHEMA_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
    embedded.sort();
    assert_eq!(embedded, on_disk);
    for t in EventType::ALL {
        assert!(on_disk.contains(&format!("{}.schema.json", t.as_str())), "a schema file for {t}");
    }
}

#[test]
fn every_valid_example_passes_schema_and_parse_and_round_trips() {
    let examples = read_examples("valid");
    for t in EventType::ALL {
        assert!(examples.iter().any(|(n, _)| n.starts_with(&format!("{}.", t.as_str()))), "a valid example of {t}");
    }
    for (name, raw) in examples {
        let value: Value = serde_json::from_slice(&raw).expect("example is JSON");
        assert!(schema_accepts(&value), "{name}: schema accepts");
        let event = parse_event(&raw).unwrap_or_else(|r| panic!("{name}: {r}"));
        assert_eq!(event.event_type().as_str(), value["event_type"], "{name}");
        assert_round_trip(&event);
    }
}

#[test]
fn correction_example_supersedes_the_original_scan() {
    let dir = schemas_dir().join("examples/valid");
    let original = parse_event(&std::fs::read(dir.join("imaging.assessed.json")).expect("read")).expect("valid");
    let correction = parse_event(&std::fs::read(dir.join("imaging.assessed.correction.json")).expect("read")).expect("valid");
    assert_eq!(correction.supersedes, Some(original.event_id));
    assert_eq!(correction.event_type(), original.event_type());
}

fn expected_reason(name: &str) -> RejectReason {
    let code = name.split('.').next().unwrap_or_default();
    RejectReason::from_code(code).unwrap_or_else(|| panic!("{name} is named after a reason code"))
}

#[test]
fn every_invalid_example_is_rejected_with_the_code_it_is_named_after() {
    let examples = read_examples("invalid");
    for reason in RejectReason::ALL {
        // too_large is generated below rather than committed as a 256 KiB file.
        if reason != RejectReason::TooLarge {
            assert!(examples.iter().any(|(n, _)| expected_reason(n) == reason), "an invalid example for {reason}");
        }
    }
    for (name, raw) in examples {
        let expected = expected_reason(&name);
        let rejection = match expected {
            RejectReason::EventIdConflict => {
                let wrapper: Value = serde_json::from_slice(&raw).expect("wrapper is JSON");
                let stored = parse_value(wrapper["stored"].clone()).expect("stored event is valid");
                let incoming = parse_value(wrapper["event"].clone()).expect("incoming event is valid on its own");
                let seq = wrapper["stored_seq"].as_u64().expect("stored_seq");
                assert_eq!(check_resend(&stored, seq, &stored.clone()), Ok(()), "identical resend is a duplicate");
                check_resend(&stored, seq, &incoming).expect_err("different content under the same id")
            }
            RejectReason::SiteMismatch => {
                let wrapper: Value = serde_json::from_slice(&raw).expect("wrapper is JSON");
                let event = parse_value(wrapper["event"].clone()).expect("event is valid on its own");
                let subject = wrapper["subject"].as_str().expect("subject");
                let own = format!("registry.events.{}.{}", event.site_id, event.event_type());
                assert_eq!(check_subject(&own, &event), Ok(()), "its own site's subject is fine");
                check_subject(subject, &event).expect_err("foreign site subject")
            }
            _ => parse_event(&raw).expect_err(&name),
        };
        assert_eq!(rejection.reason, expected, "{name}: {rejection}");
        assert!(!rejection.message.is_empty(), "{name}");
        if matches!(
            expected,
            RejectReason::Malformed | RejectReason::Schema | RejectReason::UnknownEventType | RejectReason::UnsupportedSchemaVersion
        ) {
            if let Ok(value) = serde_json::from_slice::<Value>(&raw) {
                // malformed.duplicate_key.json parses leniently (last key wins) and still fails the schema.
                assert!(!schema_accepts(&value), "{name}: the JSON Schema rejects it too");
            }
        }
    }
}

#[test]
fn messages_name_the_pointer_and_what_is_wrong() {
    let dir = schemas_dir().join("examples/invalid");
    let msg = |f: &str| parse_event(&std::fs::read(dir.join(f)).expect("read")).expect_err(f).to_string();
    assert_eq!(msg("schema.json"), "schema: /payload/lesions/2/diameter_mm: 612 is greater than the maximum of 500");
    assert_eq!(msg("schema.ecog_out_of_range.json"), "schema: /payload/ecog: 5 is greater than the maximum of 4");
    assert!(msg("schema.unknown_field.json").contains("'patient_name' was unexpected"), "{}", msg("schema.unknown_field.json"));
    assert!(msg("schema.missing_patient_id.json").starts_with("schema: /: \"patient_id\" is a required property"));
    assert!(msg("unknown_event_type.json").starts_with("unknown_event_type: /event_type: \"treatment.paused\""));
    assert!(msg("unsupported_schema_version.json").starts_with("unsupported_schema_version: /schema_version: 2 "));
    assert_eq!(msg("bad_date.json"), "bad_date: /occurred_on: \"2016-02-30\" is not a calendar day");
    assert_eq!(msg("bad_date.before_1900.json"), "bad_date: /payload/diagnosis_date: 1899-12-31 is before 1900-01-01");
    assert!(msg("bad_date.future.json").starts_with("bad_date: /occurred_on: 2014-03-07 is later than"));
    assert!(msg("inconsistent.json").starts_with("inconsistent: /payload/region: \"thorax\" with modality \"wbrt\""));
    assert!(msg("inconsistent.duplicate_lesion.json").starts_with("inconsistent: /payload/lesions/3/lesion_id: \"P1\" is listed twice"));
    assert!(msg("malformed.json").starts_with("malformed: invalid JSON: EOF while parsing"), "{}", msg("malformed.json"));
    assert!(msg("malformed.duplicate_key.json").contains("duplicate key \"event_id\" at line 1"), "{}", msg("malformed.duplicate_key.json"));
    let conflict = registry_domain::validate::event_id_conflict(Uuid::nil(), 17).to_string();
    assert!(conflict.starts_with("event_id_conflict: /event_id: 00000000-0000-0000-0000-000000000000 is already stored (seq 17)"));
    let mismatch = registry_domain::validate::site_mismatch("pumch", "fuscc").to_string();
    assert!(mismatch.starts_with("site_mismatch: /site_id: \"fuscc\" does not match the site \"pumch\""));
}

#[test]
fn size_limit_is_256_kib_checked_before_parsing() {
    let raw = std::fs::read(schemas_dir().join("examples/valid/followup.recorded.json")).expect("read");
    let trimmed = String::from_utf8(raw).expect("utf8");
    let trimmed = trimmed.trim_end();
    // Whitespace padding inside the object keeps it valid JSON of any size we like.
    let pad = |total: usize| {
        let body = &trimmed[..trimmed.len() - 1];
        format!("{body}{}}}", " ".repeat(total - trimmed.len()))
    };
    let exactly = pad(MAX_EVENT_BYTES);
    assert_eq!(exactly.len(), MAX_EVENT_BYTES);
    assert!(parse_event(exactly.as_bytes()).is_ok(), "exactly 256 KiB is accepted");
    let over = pad(MAX_EVENT_BYTES + 1);
    let r = parse_event(over.as_bytes()).expect_err("one byte over");
    assert_eq!(r.reason, RejectReason::TooLarge);
    assert_eq!(r.message, "event is 262145 bytes; the limit is 262144 bytes (256 KiB)");
    // Checked before parsing: garbage that is too large is too_large, not malformed.
    assert_eq!(parse_event(&vec![0xff; MAX_EVENT_BYTES + 1]).expect_err("big").reason, RejectReason::TooLarge);
}

#[test]
fn reason_codes_are_exactly_the_contract_codes() {
    let codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(
        codes,
        [
            "malformed",
            "schema",
            "unknown_event_type",
            "unsupported_schema_version",
            "bad_date",
            "inconsistent",
            "too_large",
            "event_id_conflict",
            "site_mismatch"
        ]
    );
    for r in RejectReason::ALL {
        assert_eq!(RejectReason::from_code(r.code()), Some(r));
    }
    assert_eq!(RejectReason::from_code("Malformed"), None);
}

fn base_started() -> Value {
    serde_json::from_slice(&std::fs::read(schemas_dir().join("examples/valid/treatment.started.json")).expect("read")).expect("json")
}

fn reason_of(v: &Value) -> Result<(), RejectReason> {
    parse_value(v.clone()).map(|_| ()).map_err(|r| r.reason)
}

#[test]
fn table_of_envelope_rules() {
    // (mutation, expected result of parse_event); the schema must agree on schema-level cases.
    let cases: Vec<(&str, Value, Result<(), RejectReason>)> = vec![
        ("schema_version 1.0 is the integer 1", json!({"schema_version": 1.0}), Ok(())),
        ("schema_version 2", json!({"schema_version": 2}), Err(RejectReason::UnsupportedSchemaVersion)),
        ("schema_version 0", json!({"schema_version": 0}), Err(RejectReason::UnsupportedSchemaVersion)),
        ("schema_version -1", json!({"schema_version": -1}), Err(RejectReason::UnsupportedSchemaVersion)),
        ("schema_version 1.5", json!({"schema_version": 1.5}), Err(RejectReason::Schema)),
        ("schema_version \"1\"", json!({"schema_version": "1"}), Err(RejectReason::Schema)),
        ("event_type null", json!({"event_type": null}), Err(RejectReason::Schema)),
        ("event_type case", json!({"event_type": "Treatment.Started"}), Err(RejectReason::UnknownEventType)),
        ("event_type of another type: payload no longer fits", json!({"event_type": "treatment.stopped"}), Err(RejectReason::Schema)),
        ("upper-case uuid", json!({"event_id": "0A6C2D7E-1111-4C3B-8D2E-6F1A2B3C4D01"}), Err(RejectReason::Schema)),
        ("braced uuid", json!({"event_id": "{0a6c2d7e-1111-4c3b-8d2e-6f1a2b3c4d01}"}), Err(RejectReason::Schema)),
        ("simple uuid", json!({"event_id": "0a6c2d7e11114c3b8d2e6f1a2b3c4d01"}), Err(RejectReason::Schema)),
        ("patient_id 64 chars", json!({"patient_id": format!("P{}", "x".repeat(63))}), Ok(())),
        ("patient_id 65 chars", json!({"patient_id": format!("P{}", "x".repeat(64))}), Err(RejectReason::Schema)),
        ("patient_id leading dot", json!({"patient_id": ".P1"}), Err(RejectReason::Schema)),
        ("patient_id with space", json!({"patient_id": "Jane Doe"}), Err(RejectReason::Schema)),
        ("patient_id non-ASCII digit", json!({"patient_id": "P١٢"}), Err(RejectReason::Schema)),
        ("site_id upper case", json!({"site_id": "FUSCC"}), Err(RejectReason::Schema)),
        ("site_id 33 chars", json!({"site_id": "s".repeat(33)}), Err(RejectReason::Schema)),
        ("site_id trailing newline", json!({"site_id": "fuscc\n"}), Err(RejectReason::Schema)),
        ("occurred_on with time", json!({"occurred_on": "2014-03-05T00:00:00Z"}), Err(RejectReason::Schema)),
        ("occurred_on non-ASCII digits", json!({"occurred_on": "٢٠١٤-03-05"}), Err(RejectReason::Schema)),
        ("occurred_on month 13", json!({"occurred_on": "2014-13-05"}), Err(RejectReason::BadDate)),
        ("occurred_on 29 Feb of a leap year", json!({"occurred_on": "2012-02-29", "recorded_at": "2012-03-01T00:00:00Z"}), Ok(())),
        ("occurred_on 29 Feb of a common year", json!({"occurred_on": "2013-02-29", "recorded_at": "2013-03-01T00:00:00Z"}), Err(RejectReason::BadDate)),
        ("occurred_on 1900-01-01", json!({"occurred_on": "1900-01-01"}), Ok(())),
        ("occurred_on 1899-12-31", json!({"occurred_on": "1899-12-31"}), Err(RejectReason::BadDate)),
        ("occurred_on recorded day + 1", json!({"occurred_on": "2014-03-06"}), Ok(())),
        ("occurred_on recorded day + 2", json!({"occurred_on": "2014-03-07"}), Err(RejectReason::BadDate)),
        ("recorded_at offset counts in UTC", json!({"occurred_on": "2014-03-06", "recorded_at": "2014-03-06T01:00:00+08:00"}), Ok(())),
        ("recorded_at offset pushes UTC back", json!({"occurred_on": "2014-03-07", "recorded_at": "2014-03-06T01:00:00+08:00"}), Err(RejectReason::BadDate)),
        ("recorded_at without offset", json!({"recorded_at": "2014-03-05T08:00:00"}), Err(RejectReason::Schema)),
        ("recorded_at lower-case t", json!({"recorded_at": "2014-03-05t08:00:00Z"}), Err(RejectReason::Schema)),
        ("recorded_at space separator", json!({"recorded_at": "2014-03-05 08:00:00Z"}), Err(RejectReason::Schema)),
        ("recorded_at 30 February", json!({"recorded_at": "2014-02-30T08:00:00Z", "occurred_on": "2014-02-28"}), Err(RejectReason::Schema)),
        ("recorded_at leap second", json!({"recorded_at": "2016-12-31T23:59:60Z", "occurred_on": "2016-12-31"}), Err(RejectReason::Schema)),
        ("recorded_at nanoseconds", json!({"recorded_at": "2014-03-05T08:00:00.123456789-03:30"}), Ok(())),
        ("recorded_at 10 fractional digits", json!({"recorded_at": "2014-03-05T08:00:00.1234567891Z"}), Err(RejectReason::Schema)),
        ("recorded_at before 1900", json!({"recorded_at": "1899-12-31T08:00:00Z", "occurred_on": "1899-12-31"}), Err(RejectReason::BadDate)),
        ("supersedes null", json!({"supersedes": null}), Ok(())),
        ("supersedes itself", json!({"supersedes": "0a6c2d7e-1111-4c3b-8d2e-6f1a2b3c4d01"}), Err(RejectReason::Inconsistent)),
        ("supersedes not a uuid", json!({"supersedes": "tx-0"}), Err(RejectReason::Schema)),
        ("supersedes number", json!({"supersedes": 7}), Err(RejectReason::Schema)),
        ("payload null", json!({"payload": null}), Err(RejectReason::Schema)),
        ("payload array", json!({"payload": []}), Err(RejectReason::Schema)),
    ];
    for (what, patch, expected) in cases {
        let mut v = base_started();
        for (k, x) in patch.as_object().expect("patch is an object") {
            v[k.as_str()] = x.clone();
        }
        assert_eq!(reason_of(&v), expected, "{what}");
        let semantic = matches!(expected, Err(RejectReason::BadDate | RejectReason::Inconsistent));
        assert_eq!(schema_accepts(&v), expected.is_ok() || semantic, "{what}: schema agrees");
    }
}

#[test]
fn table_of_payload_rules() {
    let dir = schemas_dir().join("examples/valid");
    let load = |f: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.join(f)).expect("read")).expect("json") };
    // (example, JSON pointer into the payload, new value or None to remove, expected)
    type Case = (&'static str, &'static str, Option<Value>, Result<(), RejectReason>);
    let cases: Vec<Case> = vec![
        ("patient.enrolled.json", "/ecog", Some(json!(4)), Ok(())),
        ("patient.enrolled.json", "/ecog", Some(json!(4.0)), Ok(())),
        ("patient.enrolled.json", "/ecog", Some(json!(1.5)), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/ecog", Some(json!(-1)), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/ecog", Some(json!("1")), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/birth_year", Some(json!(1899)), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/birth_year", Some(json!(2015)), Err(RejectReason::Inconsistent)),
        ("patient.enrolled.json", "/birth_year", Some(json!(1.965e3)), Ok(())),
        ("patient.enrolled.json", "/primary_size_mm", Some(json!(0)), Ok(())),
        ("patient.enrolled.json", "/primary_size_mm", Some(json!(500)), Ok(())),
        ("patient.enrolled.json", "/primary_size_mm", Some(json!(500.01)), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/prior_systemic_lines", Some(json!(20)), Ok(())),
        ("patient.enrolled.json", "/prior_systemic_lines", Some(json!(21)), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/t_stage", Some(json!("T0")), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/n_stage", Some(json!("nx")), Err(RejectReason::Schema)),
        ("patient.enrolled.json", "/diagnosis_date", Some(json!("2014-02-31")), Err(RejectReason::BadDate)),
        ("patient.enrolled.json", "/diagnosis_date", Some(json!("2014-03-03")), Err(RejectReason::BadDate)),
        ("patient.enrolled.json", "/diagnosis_date", None, Err(RejectReason::Schema)),
        ("treatment.started.json", "/dose_mg", None, Ok(())),
        ("treatment.started.json", "/dose_mg", Some(json!(-0.5)), Err(RejectReason::Schema)),
        ("treatment.started.json", "/dose_mg", Some(json!(100001)), Err(RejectReason::Schema)),
        ("treatment.started.json", "/schedule", Some(json!("tid")), Err(RejectReason::Schema)),
        ("treatment.started.json", "/course_id", Some(json!("")), Err(RejectReason::Schema)),
        ("treatment.started.json", "/course_id", Some(json!("c".repeat(65))), Err(RejectReason::Schema)),
        ("treatment.stopped.json", "/reason", Some(json!("patient_choice")), Ok(())),
        ("treatment.stopped.json", "/reason", Some(json!("cost")), Err(RejectReason::Schema)),
        ("radiotherapy.delivered.json", "/region", Some(json!("thorax")), Err(RejectReason::Inconsistent)),
        ("radiotherapy.delivered.json", "/modality", Some(json!("sbrt")), Ok(())),
        ("radiotherapy.delivered.json", "/fractions", Some(json!(0)), Err(RejectReason::Schema)),
        ("radiotherapy.delivered.json", "/fractions", Some(json!(100)), Ok(())),
        ("radiotherapy.delivered.json", "/total_dose_gy", Some(json!(200.5)), Err(RejectReason::Schema)),
        ("radiotherapy.delivered.json", "/lesion_ids", Some(json!([])), Err(RejectReason::Schema)),
        ("radiotherapy.delivered.json", "/lesion_ids", Some(json!(["B1", "B1"])), Err(RejectReason::Inconsistent)),
        ("radiotherapy.delivered.json", "/end_date", Some(json!("2015-01-19")), Err(RejectReason::Inconsistent)),
        ("radiotherapy.delivered.json", "/end_date", Some(json!("1899-01-19")), Err(RejectReason::BadDate)),
        ("radiotherapy.delivered.json", "/intent", Some(json!("adjuvant")), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/regions", Some(json!([])), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/regions", Some(json!(["chest", "chest"])), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/0/diameter_mm", Some(json!(500)), Ok(())),
        ("imaging.assessed.json", "/lesions/0/diameter_mm", Some(json!(-1)), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/0/primary", Some(json!("yes")), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/0/lesion_id", Some(json!("L".repeat(33))), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/0/organ", Some(json!("kidney")), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/0/mrn", Some(json!("123456")), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions/3/diameter_mm", Some(json!(0)), Ok(())),
        ("imaging.assessed.json", "/reported_response", Some(json!("iCPD")), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions", Some(json!((0..101).map(|i| json!({"lesion_id": format!("L{i}"), "organ": "lung"})).collect::<Vec<_>>())), Err(RejectReason::Schema)),
        ("imaging.assessed.json", "/lesions", Some(json!((0..100).map(|i| json!({"lesion_id": format!("L{i}"), "organ": "lung"})).collect::<Vec<_>>())), Ok(())),
        ("death.recorded.json", "/cause", Some(json!("suicide")), Err(RejectReason::Schema)),
        ("followup.recorded.json", "/status", Some(json!("dead")), Err(RejectReason::Schema)),
        ("event.retracted.json", "/reason", Some(json!("")), Err(RejectReason::Schema)),
        ("event.retracted.json", "/reason", Some(json!("r".repeat(500))), Ok(())),
        ("event.retracted.json", "/reason", Some(json!("r".repeat(501))), Err(RejectReason::Schema)),
        ("event.retracted.json", "/target_event_id", Some(json!("0a6c2d7e-1111-4c3b-8d2e-6f1a2b3c4d0d")), Err(RejectReason::Inconsistent)),
    ];
    for (file, pointer, new, expected) in cases {
        let mut v = load(file);
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let target = v["payload"].pointer_mut(parent).expect("parent exists").as_object_mut().expect("parent is an object");
        match new {
            Some(x) => target.insert(key.to_owned(), x),
            None => target.remove(key),
        };
        assert_eq!(reason_of(&v), expected, "{file} {pointer}");
        let semantic = matches!(expected, Err(RejectReason::BadDate | RejectReason::Inconsistent));
        assert_eq!(schema_accepts(&v), expected.is_ok() || semantic, "{file} {pointer}: schema agrees");
    }
}

#[test]
fn measurements_are_rounded_to_a_thousandth_so_canonical_json_is_a_fixed_point() {
    let mut v = base_started();
    v["payload"]["dose_mg"] = json!(185.42401648492338);
    let e = parse_value(v).expect("valid");
    let Payload::TreatmentStarted(t) = &e.payload else { panic!("type") };
    assert_eq!(t.dose_mg, Some(185.424));
    assert_round_trip(&e);
    // An event built in code with a 17-digit float still has a canonical fixed point.
    let mut built = e.clone();
    if let Payload::TreatmentStarted(t) = &mut built.payload {
        t.dose_mg = Some(0.1 + 0.2);
    }
    let canonical = built.canonical_json();
    let again = parse_event(&canonical).expect("canonical parses");
    assert_eq!(again.canonical_json(), canonical);
    assert!(String::from_utf8_lossy(&canonical).contains("\"dose_mg\":0.3,"));
    assert_eq!(round_measure(-0.0001).to_bits(), 0.0f64.to_bits(), "one zero");
}

proptest! {
    #[test]
    fn any_measurement_reaches_a_fixed_point_after_one_pass(x in 0.0f64..=500.0) {
        let mut v = base_started();
        v["payload"]["dose_mg"] = json!(x);
        let e = parse_value(v).map_err(|r| TestCaseError::fail(r.to_string()))?;
        let Payload::TreatmentStarted(t) = &e.payload else { return Err(TestCaseError::fail("type")) };
        prop_assert!((t.dose_mg.unwrap_or(f64::NAN) - x).abs() <= 0.0005 + 1e-9);
        let canonical = e.canonical_json();
        let again = parse_event(&canonical).map_err(|r| TestCaseError::fail(r.to_string()))?;
        prop_assert_eq!(&again, &e);
        prop_assert_eq!(again.canonical_json(), canonical);
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests over the typed structs.

fn arb_uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(Uuid::from_bytes)
}

fn arb_local_id(max_rest: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9][A-Za-z0-9._-]{{0,{max_rest}}}")).expect("id regex")
}

/// Measurements as the types hold them after parsing: any value in range rounded to 0.001.
fn arb_measure(max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..=(max as u32 * 10)).prop_map(|c| f64::from(c) / 10.0),
        (0.0..=max).prop_map(round_measure),
        Just(0.0),
        Just(max),
    ]
}

fn arb_date(from: NaiveDate, days: i64) -> impl Strategy<Value = NaiveDate> {
    (0..=days).prop_map(move |d| from + TimeDelta::days(d))
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn arb_enrollment(occurred_on: NaiveDate) -> impl Strategy<Value = Enrollment> {
    let diag = arb_date(day(1900, 1, 1), (occurred_on - day(1900, 1, 1)).num_days());
    (
        diag,
        prop::sample::select(vec![Sex::Female, Sex::Male]),
        prop::sample::select(vec![
            Histology::Adenocarcinoma,
            Histology::Squamous,
            Histology::Adenosquamous,
            Histology::LargeCell,
            Histology::Nos,
            Histology::Other,
        ]),
        0u8..=4,
        prop::sample::select(vec![TStage::T1, TStage::T2, TStage::T3, TStage::T4, TStage::TX]),
        prop::sample::select(vec![NStage::N0, NStage::N1, NStage::N2, NStage::N3, NStage::NX]),
        arb_measure(500.0),
        prop::sample::select(vec![AlkMethod::Fish, AlkMethod::Ihc, AlkMethod::Ngs, AlkMethod::RtPcr]),
        0u8..=20,
    )
        .prop_flat_map(|(diagnosis_date, sex, histology, ecog, t_stage, n_stage, primary_size_mm, alk_method, lines)| {
            let max_year = u16::try_from(chrono::Datelike::year(&diagnosis_date)).unwrap_or(2100);
            (1900u16..=max_year).prop_map(move |birth_year| Enrollment {
                diagnosis_date,
                birth_year,
                sex,
                histology,
                ecog,
                t_stage,
                n_stage,
                primary_size_mm,
                alk_method,
                prior_systemic_lines: lines,
            })
        })
}

fn arb_agent() -> impl Strategy<Value = Agent> {
    prop::sample::select(vec![
        Agent::Crizotinib,
        Agent::Alectinib,
        Agent::Ceritinib,
        Agent::Brigatinib,
        Agent::Lorlatinib,
        Agent::Ensartinib,
        Agent::Chemotherapy,
        Agent::Immunotherapy,
        Agent::Other,
    ])
}

fn arb_lesion() -> impl Strategy<Value = Lesion> {
    (
        arb_local_id(31),
        prop::sample::select(vec![
            Organ::Lung,
            Organ::Liver,
            Organ::Brain,
            Organ::Bone,
            Organ::Adrenal,
            Organ::RegionalLn,
            Organ::DistantLn,
            Organ::Pleura,
            Organ::Other,
        ]),
        any::<bool>(),
        prop::option::of(arb_measure(500.0)),
        prop::sample::select(vec![
            LesionState::Present,
            LesionState::Absent,
            LesionState::NotEvaluated,
            LesionState::UnequivocalProgression,
        ]),
        prop::option::of(prop::sample::select(vec![LesionRole::Target, LesionRole::NonTarget])),
    )
        .prop_map(|(lesion_id, organ, primary, diameter_mm, state, role)| {
            // An absent lesion measures 0 if anything (inconsistent otherwise).
            let diameter_mm = if state == LesionState::Absent { diameter_mm.map(|_| 0.0) } else { diameter_mm };
            Lesion { lesion_id, organ, primary, diameter_mm, state, role }
        })
}

fn unique_by_id(lesions: Vec<Lesion>) -> Vec<Lesion> {
    let mut seen = std::collections::HashSet::new();
    lesions.into_iter().filter(|l| seen.insert(l.lesion_id.clone())).collect()
}

fn arb_payload(occurred_on: NaiveDate, event_id: Uuid) -> BoxedStrategy<Payload> {
    prop_oneof![
        arb_enrollment(occurred_on).prop_map(Payload::PatientEnrolled),
        (arb_local_id(63), arb_agent(), prop::option::of(arb_measure(100_000.0)), prop::option::of(prop::sample::select(vec![Schedule::Qd, Schedule::Bid, Schedule::Other])))
            .prop_map(|(course_id, agent, dose_mg, schedule)| Payload::TreatmentStarted(TreatmentStart { course_id, agent, dose_mg, schedule })),
        (arb_local_id(63), arb_agent(), prop::sample::select(vec![
            StopReason::Progression, StopReason::Toxicity, StopReason::Death, StopReason::Completed, StopReason::PatientChoice, StopReason::Other,
        ]))
            .prop_map(|(course_id, agent, reason)| Payload::TreatmentStopped(TreatmentStop { course_id, agent, reason })),
        (
            arb_local_id(63),
            prop::sample::select(vec![RtModality::Srs, RtModality::Wbrt, RtModality::Sbrt, RtModality::Conventional]),
            prop::sample::select(vec![RtRegion::Brain, RtRegion::Thorax, RtRegion::Bone, RtRegion::Adrenal, RtRegion::Liver, RtRegion::LymphNode, RtRegion::Other]),
            prop::option::of(prop::collection::hash_set(arb_local_id(31), 1..8)),
            prop::option::of(0i64..60),
            arb_measure(200.0),
            1u32..=100,
            prop::option::of(prop::sample::select(vec![RtIntent::Curative, RtIntent::Palliative, RtIntent::Consolidative, RtIntent::Salvage, RtIntent::Unknown])),
        )
            .prop_map(move |(course_id, modality, region, ids, end, total_dose_gy, fractions, intent)| {
                let region = if matches!(modality, RtModality::Srs | RtModality::Wbrt) { RtRegion::Brain } else { region };
                Payload::RadiotherapyDelivered(Radiotherapy {
                    course_id,
                    modality,
                    region,
                    lesion_ids: ids.map(|s| s.into_iter().collect()),
                    end_date: end.map(|d| occurred_on + TimeDelta::days(d)),
                    total_dose_gy,
                    fractions,
                    intent,
                })
            }),
        (
            prop::sample::select(vec![ImagingModality::Ct, ImagingModality::Mri, ImagingModality::PetCt, ImagingModality::BoneScan, ImagingModality::Other]),
            prop::sample::subsequence(vec![ImagedRegion::Chest, ImagedRegion::Abdomen, ImagedRegion::Pelvis, ImagedRegion::Brain, ImagedRegion::Bone, ImagedRegion::Other], 1..=6),
            prop::collection::vec(arb_lesion(), 0..12),
            prop::option::of(prop::sample::select(vec![ReportedResponse::CR, ReportedResponse::PR, ReportedResponse::SD, ReportedResponse::PD, ReportedResponse::NE])),
        )
            .prop_map(|(modality, regions, lesions, reported_response)| {
                Payload::ImagingAssessed(Imaging { modality, regions, lesions: unique_by_id(lesions), reported_response })
            }),
        prop::sample::select(vec![DeathCause::Disease, DeathCause::Treatment, DeathCause::Other, DeathCause::Unknown])
            .prop_map(|cause| Payload::DeathRecorded(Death { cause })),
        prop::sample::select(vec![FollowupStatus::Alive, FollowupStatus::LostToFollowUp]).prop_map(|status| Payload::FollowupRecorded(Followup { status })),
        (arb_uuid().prop_filter("not itself", move |u| *u != event_id), "[ -~]{1,500}")
            .prop_map(|(target_event_id, reason)| Payload::EventRetracted(Retraction { target_event_id, reason })),
    ]
    .boxed()
}

prop_compose! {
    fn arb_recorded_at()(secs in 0i64..(140 * 366 * 86_400), offset_min in -(23 * 60 + 59)..=(23 * 60 + 59), nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000]) -> DateTime<FixedOffset> {
        let utc = DateTime::from_timestamp(-2_208_988_800 + 86_400 + secs, nanos).unwrap_or_default();
        utc.with_timezone(&FixedOffset::east_opt(offset_min * 60).unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())))
    }
}

fn arb_event() -> impl Strategy<Value = Event> {
    (arb_uuid(), arb_local_id(63), "[a-z0-9][a-z0-9_-]{0,31}", arb_recorded_at(), 0i64..3000, prop::option::of(arb_uuid()))
        .prop_flat_map(|(event_id, patient, site, recorded_at, back, supersedes)| {
            let latest = recorded_at.naive_utc().date() + TimeDelta::days(1);
            let occurred_on = std::cmp::max(latest - TimeDelta::days(back), day(1900, 1, 1));
            let supersedes = supersedes.filter(|s| *s != event_id);
            arb_payload(occurred_on, event_id).prop_map(move |payload| Event {
                event_id,
                patient_id: PatientId::parse(&patient).unwrap_or_else(|| unreachable!("pattern")),
                site_id: SiteId::parse(&site).unwrap_or_else(|| unreachable!("pattern")),
                occurred_on,
                recorded_at,
                supersedes,
                payload,
            })
        })
}

/// Paths (as JSON pointers) of every object and every member in `v`.
fn members(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{k}");
                out.push((p.clone(), x.clone()));
                members(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                members(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn objects(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            out.push(at.clone());
            for (k, x) in m {
                objects(x, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                objects(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn key_of(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or_default()
}

const OPTIONAL: [&str; 11] =
    ["supersedes", "dose_mg", "schedule", "lesion_ids", "end_date", "intent", "primary", "diameter_mm", "state", "role", "reported_response"];

fn with(v: &Value, pointer: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>, &str)) -> Value {
    let mut v = v.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
        f(obj, key);
    }
    v
}

fn is_rejected_by_both(v: &Value) -> Result<Rejection, String> {
    if schema_accepts(v) {
        return Err(format!("schema accepted {v}"));
    }
    match parse_value(v.clone()) {
        Ok(_) => Err(format!("parse_value accepted {v}")),
        Err(r) => Ok(r),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn generated_events_pass_schema_and_parse_and_round_trip(event in arb_event()) {
        let canonical = event.canonical_json();
        let value: Value = serde_json::from_slice(&canonical).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(schema_accepts(&value), "schema rejects {}", String::from_utf8_lossy(&canonical));
        let parsed = parse_event(&canonical).map_err(|r| TestCaseError::fail(r.to_string()))?;
        prop_assert_eq!(&parsed, &event);
        prop_assert_eq!(parsed.canonical_json(), canonical);
    }

    #[test]
    fn dropping_a_member_is_accepted_by_both_or_rejected_by_both(event in arb_event(), pick in any::<prop::sample::Index>()) {
        let v: Value = serde_json::from_slice(&event.canonical_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut all = Vec::new();
        members(&v, String::new(), &mut all);
        let (pointer, _) = &all[pick.index(all.len())];
        let dropped = with(&v, pointer, |o, k| { o.remove(k); });
        if OPTIONAL.contains(&key_of(pointer)) {
            prop_assert!(schema_accepts(&dropped), "optional {} dropped: schema", pointer);
            prop_assert!(parse_value(dropped.clone()).is_ok(), "optional {} dropped: parse", pointer);
        } else {
            let r = is_rejected_by_both(&dropped).map_err(TestCaseError::fail)?;
            prop_assert_eq!(r.reason, RejectReason::Schema, "{}: {}", pointer, r);
        }
    }

    #[test]
    fn an_unknown_field_anywhere_is_rejected_by_both(event in arb_event(), pick in any::<prop::sample::Index>(), name in "[a-z_]{1,12}") {
        let v: Value = serde_json::from_slice(&event.canonical_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut objs = Vec::new();
        objects(&v, String::new(), &mut objs);
        let at = &objs[pick.index(objs.len())];
        let mut mutated = v.clone();
        let Some(obj) = mutated.pointer_mut(at).and_then(Value::as_object_mut) else { return Err(TestCaseError::fail("object")) };
        if obj.contains_key(&name) { return Ok(()); }
        obj.insert(name.clone(), json!("ID-12345"));
        let r = is_rejected_by_both(&mutated).map_err(TestCaseError::fail)?;
        prop_assert_eq!(r.reason, RejectReason::Schema);
        prop_assert!(r.message.contains(&format!("'{name}' was unexpected")), "{}", r);
    }

    #[test]
    fn out_of_range_numbers_and_wrong_enum_strings_are_rejected_by_both(event in arb_event(), pick in any::<prop::sample::Index>(), bad in any::<prop::sample::Index>()) {
        let v: Value = serde_json::from_slice(&event.canonical_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut all = Vec::new();
        members(&v, String::new(), &mut all);
        let candidates: Vec<(String, Vec<Value>)> = all.into_iter().filter_map(|(p, x)| {
            let k = key_of(&p).to_owned();
            let bad: Vec<Value> = match (k.as_str(), &x) {
                ("ecog", _) => vec![json!(5), json!(-1), json!(2.5)],
                ("birth_year", _) => vec![json!(1899), json!(2101), json!(1965.5)],
                ("primary_size_mm" | "diameter_mm", _) => vec![json!(500.001), json!(-0.001), json!(1e6)],
                ("prior_systemic_lines", _) => vec![json!(21), json!(-1)],
                ("dose_mg", _) => vec![json!(-1), json!(100_000.5)],
                ("total_dose_gy", _) => vec![json!(200.1), json!(-3)],
                ("fractions", _) => vec![json!(0), json!(101), json!(1.5)],
                ("schema_version", _) => vec![json!(1.5), json!("1")],
                ("reason", _) if v["event_type"] == "event.retracted" => return None,
                (_, Value::String(s)) if is_enum_key(&k) => vec![json!(s.to_uppercase()), json!(format!("{s}_x")), json!("")],
                (_, Value::Array(a)) if k == "regions" && !a.is_empty() => vec![json!(["thorax"])],
                _ => return None,
            };
            Some((p, bad))
        }).collect();
        if candidates.is_empty() { return Ok(()); }
        let (pointer, bads) = &candidates[pick.index(candidates.len())];
        let new = bads[bad.index(bads.len())].clone();
        if Some(&new) == v.pointer(pointer) { return Ok(()); }
        let mutated = with(&v, pointer, |o, k| { o.insert(k.to_owned(), new.clone()); });
        let r = is_rejected_by_both(&mutated).map_err(TestCaseError::fail)?;
        let expected = if key_of(pointer) == "event_type" && new.is_string() { RejectReason::UnknownEventType } else { RejectReason::Schema };
        prop_assert_eq!(r.reason, expected, "{} = {}: {}", pointer, new, r);
    }

    /// The drift property itself: replace any member with an arbitrary JSON value; the schema
    /// accepts it exactly when parse_value accepts it or rejects it only on semantic grounds.
    #[test]
    fn schema_accepts_exactly_what_the_types_accept(event in arb_event(), pick in any::<prop::sample::Index>(), new in arb_json()) {
        let v: Value = serde_json::from_slice(&event.canonical_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut all = Vec::new();
        members(&v, String::new(), &mut all);
        let (pointer, _) = &all[pick.index(all.len())];
        let mutated = with(&v, pointer, |o, k| { o.insert(k.to_owned(), new.clone()); });
        let schema_ok = schema_accepts(&mutated);
        let parsed = parse_value(mutated.clone());
        let types_ok = match &parsed {
            Ok(_) => true,
            Err(r) => matches!(r.reason, RejectReason::BadDate | RejectReason::Inconsistent),
        };
        prop_assert_eq!(schema_ok, types_ok, "{} = {}: {:?}", pointer, new, parsed.as_ref().err());
        if let Ok(e) = parsed {
            assert_round_trip(&e);
        }
    }
}

fn is_enum_key(k: &str) -> bool {
    [
        "event_type", "sex", "histology", "t_stage", "n_stage", "alk_method", "agent", "schedule", "reason", "modality", "region", "intent",
        "organ", "state", "role", "reported_response", "cause", "status",
    ]
    .contains(&k)
}

/// Values near the contract: every enum word of every type, boundary numbers, dates, ids, junk.
fn arb_json() -> impl Strategy<Value = Value> {
    let words: Vec<&'static str> = vec![
        "female", "male", "adenocarcinoma", "squamous", "large_cell", "nos", "other", "T1", "T4", "TX", "N0", "N3", "NX", "fish", "rt_pcr",
        "crizotinib", "lorlatinib", "immunotherapy", "qd", "bid", "progression", "patient_choice", "srs", "wbrt", "sbrt", "conventional", "brain",
        "thorax", "lymph_node", "curative", "salvage", "ct", "mri", "pet_ct", "bone_scan", "chest", "pelvis", "bone", "lung", "regional_ln",
        "distant_ln", "pleura", "present", "absent", "not_evaluated", "unequivocal_progression", "target", "non_target", "CR", "PR", "PD", "NE",
        "disease", "treatment", "unknown", "alive", "lost_to_follow_up", "death.recorded", "followup.recorded", "imaging.assessed", "B1", "tx-1",
        "fuscc", "FUSCC-0042", "2016-05-03", "2016-02-30", "1899-12-31", "2016-05-04T09:12:00Z", "2016-05-04T09:12:00", "",
        "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b61", "5B0E1F0A-3C1D-4F7E-9A55-0C3F1D2E4B61",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![-1.0, 0.0, 0.5, 1.0, 1.5, 4.0, 5.0, 20.0, 21.0, 100.0, 101.0, 200.0, 200.5, 500.0, 500.5, 1899.0, 1900.0, 1965.0, 2100.0, 2101.0, 1e6])
            .prop_map(|f| json!(f)),
        (-5i64..2200).prop_map(|i| json!(i)),
        prop::sample::select(words).prop_map(|s| json!(s)),
        "[ -~]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
