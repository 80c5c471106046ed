//! Decoding events read back from the registry's own log.
//!
//! The log holds only events that passed [`crate::validate`], in their canonical encoding, so this
//! path skips the JSON Schema and the semantic checks (they were done once, at the door) and only
//! deserialises. A failure here means the log is damaged or was written by an incompatible
//! version: the caller reports it with the sequence number, it is never silently skipped.

use chrono::{DateTime, NaiveDate};
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

/// Decodes one stored (canonical) event.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
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
