//! Decoding events read back from the registry's own log.
//!
//! The log holds only events that passed [`crate::validate`], in their canonical encoding, so this
//! path skips the JSON Schema and the semantic checks (they were done once, at the door) and only
//! deserialises. A failure here means the log is damaged or was written by an incompatible
//! version: the caller reports it with the sequence number, it is never silently skipped.
//!
//! The payload is deserialised straight into its typed struct (no intermediate
//! `serde_json::Value`): the canonical encoding writes `event_type` before `payload`, so the
//! type is known when the payload is reached. Input with `payload` before `event_type` is still
//! accepted (the payload is then buffered as a `Value` and typed afterwards). Both routes accept
//! and refuse the same documents as [`decode_via_value`], the former decoder, which the tests
//! compare against, with two differences that canonical encodings never exercise: a key repeated
//! inside a payload object is refused here (serde reports a duplicate field) where the `Value`
//! route kept the last one; and when an event is broken in several ways at once, a payload error
//! may be the one reported.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use uuid::Uuid;

use crate::events::{Event, EventType, PatientId, Payload, SiteId};

/// Why stored bytes could not be decoded into an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not valid event JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("schema version {0} is not supported by this build")]
    Version(u32),
    #[error("invalid {field}: {value:?}")]
    Field { field: &'static str, value: String },
}

/// Decodes one stored (canonical) event.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let env = de.deserialize_map(EnvelopeVisitor)?;
    de.end()?;
    let event_type = env.event_type;
    let event_type = EventType::parse(&event_type).ok_or_else(|| DecodeError::UnknownType(event_type.into_owned()))?;
    if env.schema_version != Event::SCHEMA_VERSION {
        return Err(DecodeError::Version(env.schema_version));
    }
    let patient_id = PatientId::parse(&env.patient_id)
        .ok_or_else(|| DecodeError::Field { field: "patient_id", value: env.patient_id.clone().into_owned() })?;
    let site_id = SiteId::parse(&env.site_id)
        .ok_or_else(|| DecodeError::Field { field: "site_id", value: env.site_id.clone().into_owned() })?;
    let recorded_at = DateTime::parse_from_rfc3339(&env.recorded_at)
        .map_err(|_| DecodeError::Field { field: "recorded_at", value: env.recorded_at.clone().into_owned() })?;
    let payload = match env.payload {
        RawPayload::Typed(p) => p,
        RawPayload::Buffered(v) => Payload::from_value(event_type, v)?,
    };
    Ok(Event {
        event_id: env.event_id,
        patient_id,
        site_id,
        occurred_on: env.occurred_on,
        recorded_at,
        supersedes: env.supersedes,
        payload,
    })
}

/// The former decoder: the envelope with its payload as a `serde_json::Value`, then typed.
/// Kept as the reference [`decode`] is tested against (and for benchmarks); not used otherwise.
pub fn decode_via_value(bytes: &[u8]) -> Result<Event, DecodeError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope {
        event_id: Uuid,
        event_type: String,
        schema_version: u32,
        patient_id: String,
        site_id: String,
        occurred_on: NaiveDate,
        recorded_at: String,
        supersedes: Option<Uuid>,
        payload: serde_json::Value,
    }
    let env: Envelope = serde_json::from_slice(bytes)?;
    let event_type = EventType::parse(&env.event_type).ok_or(DecodeError::UnknownType(env.event_type))?;
    if env.schema_version != Event::SCHEMA_VERSION {
        return Err(DecodeError::Version(env.schema_version));
    }
    let patient_id = PatientId::parse(&env.patient_id)
        .ok_or(DecodeError::Field { field: "patient_id", value: env.patient_id.clone() })?;
    let site_id =
        SiteId::parse(&env.site_id).ok_or(DecodeError::Field { field: "site_id", value: env.site_id.clone() })?;
    let recorded_at = DateTime::parse_from_rfc3339(&env.recorded_at)
        .map_err(|_| DecodeError::Field { field: "recorded_at", value: env.recorded_at.clone() })?;
    let payload = Payload::from_value(event_type, env.payload)?;
    Ok(Event {
        event_id: env.event_id,
        patient_id,
        site_id,
        occurred_on: env.occurred_on,
        recorded_at,
        supersedes: env.supersedes,
        payload,
    })
}

enum RawPayload {
    Typed(Payload),
    Buffered(serde_json::Value),
}

struct RawEnvelope<'de> {
    event_id: Uuid,
    event_type: Cow<'de, str>,
    schema_version: u32,
    patient_id: Cow<'de, str>,
    site_id: Cow<'de, str>,
    occurred_on: NaiveDate,
    recorded_at: Cow<'de, str>,
    supersedes: Option<Uuid>,
    payload: RawPayload,
}

const FIELDS: &[&str] =
    &["event_id", "event_type", "schema_version", "patient_id", "site_id", "occurred_on", "recorded_at", "supersedes", "payload"];

/// A string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The payload of a known type, deserialised straight into its struct.
struct PayloadSeed(EventType);

impl<'de> DeserializeSeed<'de> for PayloadSeed {
    type Value = Payload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        Ok(match self.0 {
            EventType::PatientEnrolled => Payload::PatientEnrolled(Deserialize::deserialize(d)?),
            EventType::TreatmentStarted => Payload::TreatmentStarted(Deserialize::deserialize(d)?),
            EventType::TreatmentStopped => Payload::TreatmentStopped(Deserialize::deserialize(d)?),
            EventType::RadiotherapyDelivered => Payload::RadiotherapyDelivered(Deserialize::deserialize(d)?),
            EventType::ImagingAssessed => Payload::ImagingAssessed(Deserialize::deserialize(d)?),
            EventType::DeathRecorded => Payload::DeathRecorded(Deserialize::deserialize(d)?),
            EventType::FollowupRecorded => Payload::FollowupRecorded(Deserialize::deserialize(d)?),
            EventType::EventRetracted => Payload::EventRetracted(Deserialize::deserialize(d)?),
        })
    }
}

struct EnvelopeVisitor;

fn put<T, E: serde::de::Error>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(v);
    Ok(())
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope<'de>, A::Error> {
        let mut event_id = None;
        let mut event_type: Option<Cow<'de, str>> = None;
        let mut schema_version = None;
        let mut patient_id = None;
        let mut site_id = None;
        let mut occurred_on = None;
        let mut recorded_at = None;
        let mut supersedes: Option<Option<Uuid>> = None;
        let mut payload = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match &*key {
                "event_id" => put(&mut event_id, "event_id", map.next_value::<Uuid>()?)?,
                "event_type" => put(&mut event_type, "event_type", map.next_value::<Text<'de>>()?.0)?,
                "schema_version" => put(&mut schema_version, "schema_version", map.next_value::<u32>()?)?,
                "patient_id" => put(&mut patient_id, "patient_id", map.next_value::<Text<'de>>()?.0)?,
                "site_id" => put(&mut site_id, "site_id", map.next_value::<Text<'de>>()?.0)?,
                "occurred_on" => put(&mut occurred_on, "occurred_on", map.next_value::<NaiveDate>()?)?,
                "recorded_at" => put(&mut recorded_at, "recorded_at", map.next_value::<Text<'de>>()?.0)?,
                "supersedes" => put(&mut supersedes, "supersedes", map.next_value::<Option<Uuid>>()?)?,
                "payload" => {
                    if payload.is_some() {
                        return Err(A::Error::duplicate_field("payload"));
                    }
                    let known = event_type.as_deref().and_then(EventType::parse);
                    payload = Some(match known {
                        Some(t) => RawPayload::Typed(map.next_value_seed(PayloadSeed(t))?),
                        None => RawPayload::Buffered(map.next_value::<serde_json::Value>()?),
                    });
                }
                other => return Err(A::Error::unknown_field(other, FIELDS)),
            }
        }
        Ok(RawEnvelope {
            event_id: event_id.ok_or_else(|| A::Error::missing_field("event_id"))?,
            event_type: event_type.ok_or_else(|| A::Error::missing_field("event_type"))?,
            schema_version: schema_version.ok_or_else(|| A::Error::missing_field("schema_version"))?,
            patient_id: patient_id.ok_or_else(|| A::Error::missing_field("patient_id"))?,
            site_id: site_id.ok_or_else(|| A::Error::missing_field("site_id"))?,
            occurred_on: occurred_on.ok_or_else(|| A::Error::missing_field("occurred_on"))?,
            recorded_at: recorded_at.ok_or_else(|| A::Error::missing_field("recorded_at"))?,
            supersedes: supersedes.unwrap_or(None),
            payload: payload.ok_or_else(|| A::Error::missing_field("payload"))?,
        })
    }
}
