//! Ingest validation of the wire contract (`shared/spec/events.md`, schema version 1): raw bytes in,
//! a typed [`Event`] or a [`Rejection`] with a reason code out. Never panics on input.
//!
//! Order of checks (the first failure wins, so every input gets exactly one reason):
//! 1. size: more than [`MAX_EVENT_BYTES`] → `too_large` (before any parsing);
//! 2. UTF-8 → `malformed` (with the byte offset);
//! 3. JSON syntax, nesting deeper than 128, duplicate object keys → `malformed` (line/column);
//! 4. `event_type` a string that names no type → `unknown_event_type`;
//! 5. `schema_version` an integer other than 1 → `unsupported_schema_version`;
//! 6. the embedded JSON Schema (`schemas/*.schema.json`) → `schema` (JSON pointer + what is wrong);
//! 7. calendar and plausibility of dates → `bad_date`; internal contradictions → `inconsistent`.
//!
//! `event_id_conflict` and `site_mismatch` need context this module does not have (the stored
//! event, the bus subject); their constructors and pure checks live here so the wording is one.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::events::{Event, EventType, Lesion, LesionState, Payload, PatientId, RtModality, RtRegion, SiteId};

/// An encoded event is at most 256 KiB (events.md, "Envelope").
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Earliest clinical date the registry accepts (events.md, "Semantic checks").
const EARLIEST_DATE: (i32, u32, u32) = (1900, 1, 1);

/// Longest message kept; schema errors quote the offending value, which may be large.
const MAX_MESSAGE_CHARS: usize = 400;

/// Why an event was refused. The `code()` strings are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Malformed,
    Schema,
    UnknownEventType,
    UnsupportedSchemaVersion,
    BadDate,
    Inconsistent,
    TooLarge,
    EventIdConflict,
    SiteMismatch,
}

impl RejectReason {
    pub const ALL: [RejectReason; 9] = [
        RejectReason::Malformed,
        RejectReason::Schema,
        RejectReason::UnknownEventType,
        RejectReason::UnsupportedSchemaVersion,
        RejectReason::BadDate,
        RejectReason::Inconsistent,
        RejectReason::TooLarge,
        RejectReason::EventIdConflict,
        RejectReason::SiteMismatch,
    ];

    /// The wire code, e.g. `unknown_event_type`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Schema => "schema",
            RejectReason::UnknownEventType => "unknown_event_type",
            RejectReason::UnsupportedSchemaVersion => "unsupported_schema_version",
            RejectReason::BadDate => "bad_date",
            RejectReason::Inconsistent => "inconsistent",
            RejectReason::TooLarge => "too_large",
            RejectReason::EventIdConflict => "event_id_conflict",
            RejectReason::SiteMismatch => "site_mismatch",
        }
    }

    /// Inverse of [`RejectReason::code`].
    pub fn from_code(code: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused event: the reason code and a specific, human-readable message (never empty).
/// Displays as `<code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    fn new(reason: RejectReason, message: impl Into<String>) -> Rejection {
        let mut message = message.into();
        if message.is_empty() {
            message = "(no detail)".to_owned();
        }
        Rejection { reason, message: truncate(message) }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.message)
    }
}

impl std::error::Error for Rejection {}

/// `site_mismatch`: the event's `site_id` is not the site token of the subject it arrived on.
pub fn site_mismatch(subject_site: &str, event_site: &str) -> Rejection {
    Rejection::new(
        RejectReason::SiteMismatch,
        format!("/site_id: \"{event_site}\" does not match the site \"{subject_site}\" of the subject it was published on"),
    )
}

/// `event_id_conflict`: the id is already stored (at `existing_seq`) with different content.
pub fn event_id_conflict(event_id: Uuid, existing_seq: u64) -> Rejection {
    Rejection::new(
        RejectReason::EventIdConflict,
        format!(
            "/event_id: {} is already stored (seq {existing_seq}) with different content; the stored event is kept",
            event_id.hyphenated()
        ),
    )
}

/// Checks that `subject` is `registry.events.<site_id>.<event_type>` with the event's own site.
/// The type token is routing only and is not compared (events.md names only the site rule).
pub fn check_subject(subject: &str, event: &Event) -> Result<(), Rejection> {
    let site = subject
        .strip_prefix("registry.events.")
        .and_then(|rest| rest.split_once('.'))
        .map(|(site, _event_type)| site);
    match site {
        Some(site) if site == event.site_id.as_str() => Ok(()),
        Some(site) => Err(site_mismatch(site, event.site_id.as_str())),
        None => Err(Rejection::new(
            RejectReason::SiteMismatch,
            format!("subject \"{subject}\" is not registry.events.<site_id>.<event_type>, so it names no site"),
        )),
    }
}

/// Resend rule for an `event_id` that is already stored: same canonical content is a duplicate
/// (`Ok`, acknowledge and store once), different content is `event_id_conflict`.
/// Precondition: `incoming.event_id == stored.event_id`.
pub fn check_resend(stored: &Event, stored_seq: u64, incoming: &Event) -> Result<(), Rejection> {
    if stored.event_id == incoming.event_id && stored.canonical_json() == incoming.canonical_json() {
        Ok(())
    } else {
        Err(event_id_conflict(incoming.event_id, stored_seq))
    }
}

/// Parses and validates one encoded event (see the module header for the order of checks).
pub fn parse_event(raw: &[u8]) -> Result<Event, Rejection> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!("event is {} bytes; the limit is {MAX_EVENT_BYTES} bytes (256 KiB)", raw.len()),
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        Rejection::new(RejectReason::Malformed, format!("invalid UTF-8 at byte offset {}", e.valid_up_to()))
    })?;
    let value = parse_json(text)?;
    parse_value(value)
}

/// Steps 4–7 of [`parse_event`] on an already parsed JSON value (no size or syntax checks).
pub fn parse_value(value: Value) -> Result<Event, Rejection> {
    if let Some(obj) = value.as_object() {
        check_event_type(obj)?;
        check_schema_version(obj)?;
    }
    check_schema(&value)?;
    let Value::Object(obj) = value else {
        // check_schema rejects every non-object; kept as a rejection rather than a panic.
        return Err(Rejection::new(RejectReason::Schema, "/: expected an object"));
    };
    let event = typed(obj)?;
    check_dates(&event)?;
    check_consistency(&event)?;
    Ok(event)
}

/// Validates a JSON value against the embedded envelope schema (which selects the payload schema).
pub fn check_schema(value: &Value) -> Result<(), Rejection> {
    let validator = match &*VALIDATOR {
        Ok(v) => v,
        Err(e) => return Err(Rejection::new(RejectReason::Schema, format!("internal: embedded schema is unusable: {e}"))),
    };
    // Valid events (nearly all) take the short-circuiting check; only an invalid one pays for
    // collecting every error and its message.
    if validator.is_valid(value) {
        return Ok(());
    }
    // "First" error = smallest (instance pointer, schema pointer): independent of evaluation order.
    let mut errors: Vec<(String, String, String)> = validator
        .iter_errors(value)
        .map(|e| (e.instance_path.as_str().to_owned(), e.schema_path.as_str().to_owned(), e.to_string()))
        .collect();
    errors.sort();
    match errors.first() {
        None => Ok(()),
        Some((pointer, _, what)) => {
            let pointer = if pointer.is_empty() { "/" } else { pointer.as_str() };
            let more = match errors.len() - 1 {
                0 => String::new(),
                1 => " (and 1 more error)".to_owned(),
                n => format!(" (and {n} more errors)"),
            };
            Err(Rejection::new(RejectReason::Schema, format!("{pointer}: {}{more}", truncate_chars(what, 300))))
        }
    }
}

/// Startup self-check: the embedded schemas compile. `parse_event` would otherwise refuse every event.
pub fn check_embedded_schemas() -> Result<(), String> {
    VALIDATOR.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The schema files, embedded so the binary is self-contained: (file name, contents).
pub const SCHEMA_FILES: [(&str, &str); 10] = [
    ("common.schema.json", include_str!("../../../schemas/common.schema.json")),
    ("envelope.schema.json", include_str!("../../../schemas/envelope.schema.json")),
    ("patient.enrolled.schema.json", include_str!("../../../schemas/patient.enrolled.schema.json")),
    ("treatment.started.schema.json", include_str!("../../../schemas/treatment.started.schema.json")),
    ("treatment.stopped.schema.json", include_str!("../../../schemas/treatment.stopped.schema.json")),
    ("radiotherapy.delivered.schema.json", include_str!("../../../schemas/radiotherapy.delivered.schema.json")),
    ("imaging.assessed.schema.json", include_str!("../../../schemas/imaging.assessed.schema.json")),
    ("death.recorded.schema.json", include_str!("../../../schemas/death.recorded.schema.json")),
    ("followup.recorded.schema.json", include_str!("../../../schemas/followup.recorded.schema.json")),
    ("event.retracted.schema.json", include_str!("../../../schemas/event.retracted.schema.json")),
];

/// Base URI of the schemas' `$id`s; `.example` never resolves, so nothing is fetched.
pub const SCHEMA_BASE_URI: &str = "https://registry.example/schemas/v1/";

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(build_validator);

fn build_validator() -> Result<jsonschema::Validator, String> {
    let mut options = jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true);
    let mut envelope = None;
    for (name, text) in SCHEMA_FILES {
        let contents: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        if name == "envelope.schema.json" {
            envelope = Some(contents.clone());
        }
        let resource = jsonschema::Resource::from_contents(contents).map_err(|e| format!("{name}: {e}"))?;
        options = options.with_resource(format!("{SCHEMA_BASE_URI}{name}"), resource);
    }
    let envelope = envelope.ok_or_else(|| "envelope.schema.json missing".to_owned())?;
    options.build(&envelope).map_err(|e| format!("envelope.schema.json: {e}"))
}

fn parse_json(text: &str) -> Result<Value, Rejection> {
    // serde_json's recursion limit (128) stays on: deep nesting is an error, not a stack overflow.
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Rejection::new(RejectReason::Malformed, format!("invalid JSON: {e}")))?;
    Ok(value.0)
}

/// A JSON value that refuses duplicate object keys: `{"ecog": 1, "ecog": 7}` means different
/// things to different parsers, so it is `malformed` rather than silently "last one wins".
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrictValue, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StrictValue, E> {
        Number::from_f64(v).map(|n| StrictValue(Value::Number(n))).ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One lookup per key (the map hashes with SipHash under `preserve_order`).
            match obj.entry(key) {
                serde_json::map::Entry::Occupied(o) => {
                    return Err(serde::de::Error::custom(format_args!("duplicate key \"{}\"", o.key())));
                }
                serde_json::map::Entry::Vacant(v) => {
                    let StrictValue(value) = map.next_value()?;
                    v.insert(value);
                }
            }
        }
        Ok(StrictValue(Value::Object(obj)))
    }
}

fn check_event_type(obj: &Map<String, Value>) -> Result<(), Rejection> {
    match obj.get("event_type") {
        Some(Value::String(s)) if EventType::parse(s).is_none() => Err(Rejection::new(
            RejectReason::UnknownEventType,
            format!(
                "/event_type: \"{}\" is not an event type of schema version 1 (expected one of {})",
                truncate_chars(s, 80),
                EventType::ALL.map(EventType::as_str).join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

fn check_schema_version(obj: &Map<String, Value>) -> Result<(), Rejection> {
    let Some(Value::Number(n)) = obj.get("schema_version") else { return Ok(()) };
    // JSON Schema's integer: any number with a zero fractional part, so 1.0 is version 1.
    let is_integer = n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0);
    let is_one = n.as_u64() == Some(1) || n.as_f64() == Some(1.0);
    if is_integer && !is_one {
        return Err(Rejection::new(
            RejectReason::UnsupportedSchemaVersion,
            format!("/schema_version: {n} is not supported; this registry reads schema version {}", Event::SCHEMA_VERSION),
        ));
    }
    Ok(())
}

/// Typed deserialisation of a schema-valid envelope. Calendar-invalid dates are `bad_date`; any
/// other failure here means schema and types disagree, which the contract tests rule out.
fn typed(mut obj: Map<String, Value>) -> Result<Event, Rejection> {
    let drift = |what: &str| Rejection::new(RejectReason::Schema, format!("{what} (internal: types disagree with the schema)"));
    let str_field = |obj: &Map<String, Value>, key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);

    let event_type = str_field(&obj, "event_type").and_then(|s| EventType::parse(&s)).ok_or_else(|| drift("/event_type"))?;
    let event_id = str_field(&obj, "event_id")
        .and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| drift("/event_id: not a UUID"))?;
    let patient_id =
        str_field(&obj, "patient_id").and_then(|s| PatientId::parse(&s)).ok_or_else(|| drift("/patient_id: not a patient id"))?;
    let site_id = str_field(&obj, "site_id").and_then(|s| SiteId::parse(&s)).ok_or_else(|| drift("/site_id: not a site id"))?;
    let occurred_on = calendar_date(&obj, "", "occurred_on")?.ok_or_else(|| drift("/occurred_on: missing"))?;
    let recorded_at_text = str_field(&obj, "recorded_at").ok_or_else(|| drift("/recorded_at: missing"))?;
    let recorded_at = DateTime::<FixedOffset>::parse_from_rfc3339(&recorded_at_text).map_err(|e| {
        Rejection::new(RejectReason::BadDate, format!("/recorded_at: \"{recorded_at_text}\" is not a real instant ({e})"))
    })?;
    let supersedes = match obj.get("supersedes") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Uuid::parse_str(s).map_err(|_| drift("/supersedes: not a UUID"))?),
        Some(_) => return Err(drift("/supersedes: not a UUID or null")),
    };
    let payload_value = obj.remove("payload").ok_or_else(|| drift("/payload: missing"))?;
    if let Value::Object(p) = &payload_value {
        for key in ["diagnosis_date", "end_date"] {
            calendar_date(p, "/payload", key)?;
        }
    }
    let mut payload = Payload::from_value(event_type, payload_value).map_err(|e| drift(&format!("/payload: {e}")))?;
    payload.normalise();
    Ok(Event { event_id, patient_id, site_id, occurred_on, recorded_at, supersedes, payload })
}

/// Reads an optional date field; a string matching the schema's pattern that names no calendar day
/// (2016-02-30, 2016-13-01) is `bad_date`: clinically it is an impossible date, not a shape error.
fn calendar_date(obj: &Map<String, Value>, at: &str, key: &str) -> Result<Option<NaiveDate>, Rejection> {
    match obj.get(key) {
        Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| Rejection::new(RejectReason::BadDate, format!("{at}/{key}: \"{s}\" is not a calendar day"))),
        _ => Ok(None),
    }
}

fn check_dates(event: &Event) -> Result<(), Rejection> {
    let (y, m, d) = EARLIEST_DATE;
    let earliest = NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
    let recorded_on = event.recorded_at.naive_utc().date();
    // events.md: occurred_on may be at most one day after the UTC date of recorded_at (time zones).
    let latest = recorded_on.checked_add_signed(TimeDelta::days(1)).unwrap_or(NaiveDate::MAX);

    let mut dates: Vec<(&str, NaiveDate)> = vec![("/occurred_on", event.occurred_on), ("/recorded_at", recorded_on)];
    match &event.payload {
        Payload::PatientEnrolled(e) => dates.push(("/payload/diagnosis_date", e.diagnosis_date)),
        Payload::RadiotherapyDelivered(r) => dates.extend(r.end_date.map(|d| ("/payload/end_date", d))),
        _ => {}
    }
    for (at, date) in &dates {
        if *date < earliest {
            return Err(Rejection::new(RejectReason::BadDate, format!("{at}: {date} is before {earliest}")));
        }
    }
    for (at, date) in [("/occurred_on", Some(event.occurred_on)), ("/payload/diagnosis_date", diagnosis_date(event))] {
        if let Some(date) = date.filter(|d| *d > latest) {
            return Err(Rejection::new(
                RejectReason::BadDate,
                format!("{at}: {date} is later than the UTC date of recorded_at ({recorded_on}) plus one day"),
            ));
        }
    }
    Ok(())
}

fn diagnosis_date(event: &Event) -> Option<NaiveDate> {
    match &event.payload {
        Payload::PatientEnrolled(e) => Some(e.diagnosis_date),
        _ => None,
    }
}

fn check_consistency(event: &Event) -> Result<(), Rejection> {
    let inconsistent = |msg: String| Err(Rejection::new(RejectReason::Inconsistent, msg));
    if event.supersedes == Some(event.event_id) {
        return inconsistent(format!("/supersedes: the event supersedes itself ({})", event.event_id.hyphenated()));
    }
    match &event.payload {
        Payload::ImagingAssessed(imaging) => check_lesions(&imaging.lesions),
        Payload::RadiotherapyDelivered(rt) => {
            if matches!(rt.modality, RtModality::Srs | RtModality::Wbrt) && rt.region != RtRegion::Brain {
                let region = serde_json::to_string(&rt.region).unwrap_or_default();
                return inconsistent(format!(
                    "/payload/region: {region} with modality \"{}\"; SRS and WBRT treat the brain only",
                    rt.modality.as_str()
                ));
            }
            if let Some(end) = rt.end_date.filter(|end| *end < event.occurred_on) {
                return inconsistent(format!("/payload/end_date: {end} is before the first fraction (occurred_on {})", event.occurred_on));
            }
            let ids = rt.lesion_ids.as_deref().unwrap_or_default();
            first_duplicate(ids.iter().map(String::as_str)).map_or(Ok(()), |(first, dup)| {
                inconsistent(format!("/payload/lesion_ids/{dup}: \"{}\" is listed twice (first at /payload/lesion_ids/{first})", ids[dup]))
            })
        }
        Payload::PatientEnrolled(e) => {
            if i32::from(e.birth_year) > chrono::Datelike::year(&e.diagnosis_date) {
                return inconsistent(format!(
                    "/payload/birth_year: {} is after the year of diagnosis_date {}",
                    e.birth_year, e.diagnosis_date
                ));
            }
            Ok(())
        }
        Payload::EventRetracted(r) if r.target_event_id == event.event_id => {
            inconsistent(format!("/payload/target_event_id: the event retracts itself ({})", event.event_id.hyphenated()))
        }
        _ => Ok(()),
    }
}

fn check_lesions(lesions: &[Lesion]) -> Result<(), Rejection> {
    if let Some((first, dup)) = first_duplicate(lesions.iter().map(|l| l.lesion_id.as_str())) {
        return Err(Rejection::new(
            RejectReason::Inconsistent,
            format!(
                "/payload/lesions/{dup}/lesion_id: \"{}\" is listed twice (first at /payload/lesions/{first}); lesion ids are unique within an event",
                lesions[dup].lesion_id
            ),
        ));
    }
    for (i, lesion) in lesions.iter().enumerate() {
        if let (LesionState::Absent, Some(d)) = (lesion.state, lesion.diameter_mm) {
            if d > 0.0 {
                return Err(Rejection::new(
                    RejectReason::Inconsistent,
                    format!("/payload/lesions/{i}: lesion \"{}\" is absent but has diameter_mm {d}", lesion.lesion_id),
                ));
            }
        }
    }
    Ok(())
}

/// (index of the first occurrence, index of the first repeat) of the earliest repeated id.
fn first_duplicate<'a>(ids: impl Iterator<Item = &'a str>) -> Option<(usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.enumerate() {
        if let Some(first) = seen.insert(id, i) {
            return Some((first, i));
        }
    }
    None
}

fn truncate(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        message
    } else {
        truncate_chars(&message, MAX_MESSAGE_CHARS)
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}
