//! One batch of raw inputs through validation, de-duplication and a group-committed append.

use std::collections::BTreeMap;

use registry_domain::events::{Event, PatientId};
use registry_domain::validate::{self, Rejection};
use registry_store::{AppendOutcome, NewEvent, Store, StoreError};

/// One input as received.
#[derive(Debug, Clone, Copy)]
pub struct RawInput<'a> {
    /// The bytes exactly as received.
    pub bytes: &'a [u8],
    /// Where it came from (`file:NAME:LINE`, or the bus subject), kept with a rejection.
    pub source: &'a str,
    /// The site token of the bus subject it arrived on; `None` for file imports.
    pub subject_site: Option<&'a str>,
    /// The EVENTS stream sequence of the bus message; `None` for file imports. A rejected bus
    /// message is kept once, however often it is delivered.
    pub stream_seq: Option<u64>,
}

/// What happened to one input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputOutcome {
    /// Newly stored at `seq`.
    Accepted { seq: u64, patient_id: PatientId },
    /// Already stored (same id, same content) at `seq`: acknowledged, stored once.
    Duplicate { seq: u64 },
    /// Not accepted; stored in the rejected tree under `rejection_id`.
    Rejected { code: &'static str, message: String, rejection_id: u64 },
}

/// Counts over inputs, as `registry import` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchSummary {
    pub read: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
}

impl BatchSummary {
    /// Adds one outcome to the counts.
    pub fn count(&mut self, outcome: &InputOutcome) {
        self.read += 1;
        match outcome {
            InputOutcome::Accepted { .. } => self.accepted += 1,
            InputOutcome::Duplicate { .. } => self.duplicate += 1,
            InputOutcome::Rejected { code, .. } => {
                self.rejected += 1;
                *self.rejected_by_reason.entry((*code).to_owned()).or_default() += 1;
            }
        }
    }
}

enum Checked {
    Valid { event: Event, content: Vec<u8>, event_id: String },
    Invalid(Rejection),
}

fn check(input: &RawInput<'_>) -> Checked {
    let event = match validate::parse_event(input.bytes) {
        Ok(event) => event,
        Err(rejection) => return Checked::Invalid(rejection),
    };
    if let Some(site) = input.subject_site {
        if site != event.site_id.as_str() {
            return Checked::Invalid(validate::site_mismatch(site, event.site_id.as_str()));
        }
    }
    let content = event.canonical_json();
    let event_id = event.event_id.hyphenated().to_string();
    Checked::Valid { event, content, event_id }
}

/// Validates, de-duplicates and appends `inputs` as one unit of work (one flush), recording every
/// rejection (including `event_id_conflict` found by the store) with its raw bytes.
/// `now_micros` is the arrival time stamped on accepted events and rejections.
///
/// Returns one outcome per input, in input order. On `Err` nothing may be acknowledged; running
/// the same inputs again is safe (accepted ones come back as duplicates).
pub fn ingest_batch(store: &Store, inputs: &[RawInput<'_>], now_micros: i64) -> Result<Vec<InputOutcome>, StoreError> {
    Ok(ingest_batch_accepted(store, inputs, now_micros)?.0)
}

/// An event [`ingest_batch_accepted`] newly stored: what the log holds at `seq`, with its keys,
/// so that the caller can publish it without reading it back or parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedEvent {
    pub seq: u64,
    pub event_id: String,
    pub patient_id: String,
    /// The canonical bytes as appended.
    pub content: Vec<u8>,
    pub received_at_micros: i64,
}

/// [`ingest_batch`], also returning the newly accepted events (in input order) exactly as they
/// were appended.
pub fn ingest_batch_accepted(
    store: &Store,
    inputs: &[RawInput<'_>],
    now_micros: i64,
) -> Result<(Vec<InputOutcome>, Vec<AcceptedEvent>), StoreError> {
    let mut checked: Vec<Checked> = inputs.iter().map(check).collect();

    let mut new_events = Vec::new();
    let mut new_event_input = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        if let Checked::Valid { event, content, event_id } = c {
            new_events.push(NewEvent {
                event_id,
                patient_id: event.patient_id.as_str(),
                content,
                received_at_micros: now_micros,
            });
            new_event_input.push(i);
        }
    }

    // Conflicts are only known after the store has looked, so the append and the conflict
    // rejections are two steps; both end with a flush before anything is acknowledged.
    let mut outcomes: Vec<Option<InputOutcome>> = vec![None; inputs.len()];
    let mut rejections: Vec<(usize, Rejection)> = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        if let Checked::Invalid(r) = c {
            rejections.push((i, r.clone()));
        }
    }
    let appended = store.append_batch(&new_events)?;
    for (k, outcome) in appended.into_iter().enumerate() {
        let i = new_event_input[k];
        let Checked::Valid { event, .. } = &checked[i] else { continue };
        outcomes[i] = match outcome {
            AppendOutcome::Accepted { seq } => {
                Some(InputOutcome::Accepted { seq, patient_id: event.patient_id.clone() })
            }
            AppendOutcome::Duplicate { seq } => Some(InputOutcome::Duplicate { seq }),
            AppendOutcome::Conflict { existing_seq } => {
                rejections.push((i, validate::event_id_conflict(event.event_id, existing_seq)));
                None
            }
        };
    }

    if !rejections.is_empty() {
        rejections.sort_by_key(|(i, _)| *i);
        let stored: Vec<registry_store::Rejection<'_>> = rejections
            .iter()
            .map(|(i, r)| registry_store::Rejection {
                raw: inputs[*i].bytes,
                source: inputs[*i].source,
                reason: r.reason.code(),
                message: &r.message,
                at_micros: now_micros,
                stream_seq: inputs[*i].stream_seq,
            })
            .collect();
        let ids = store.reject_batch(&stored)?;
        for ((i, r), id) in rejections.into_iter().zip(ids) {
            outcomes[i] = Some(InputOutcome::Rejected { code: r.reason.code(), message: r.message, rejection_id: id });
        }
    }
    let outcomes: Vec<InputOutcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(InputOutcome::Rejected { code: "internal", message: "no outcome".into(), rejection_id: 0 }))
        .collect();
    let mut accepted = Vec::new();
    for (o, c) in outcomes.iter().zip(checked.iter_mut()) {
        if let (InputOutcome::Accepted { seq, patient_id }, Checked::Valid { content, event_id, .. }) = (o, c) {
            accepted.push(AcceptedEvent {
                seq: *seq,
                event_id: std::mem::take(event_id),
                patient_id: patient_id.as_str().to_owned(),
                content: std::mem::take(content),
                received_at_micros: now_micros,
            });
        }
    }
    Ok((outcomes, accepted))
}
