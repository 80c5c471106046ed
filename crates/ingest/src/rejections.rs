//! Reading the kept rejections back (`registry rejections`, `GET /rejections`;
//! docs/event-contract.md, "Reading the rejections back").
//!
//! A refused input is not trusted: what is read from it (its `event_id`, its `site_id`) is read
//! leniently and only to help a person find it and its fix. Its site is the bus subject's site
//! token when it came from the bus (who published it), else its own `site_id`.

use registry_domain::validate::{RejectReason, MAX_EVENT_BYTES};
use registry_store::{Store, StoreError, StoredRejection};
use serde::Serialize;
use serde_json::Value;

/// One rejection as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionEntry {
    pub id: u64,
    /// When it was rejected (RFC 3339, UTC, microseconds).
    pub rejected_at: String,
    /// `file:<path>:<line>` or the bus subject.
    pub source: String,
    /// The subject's site token, else the input's `site_id`; `None` when neither can be read.
    pub site: Option<String>,
    pub reason: String,
    pub message: String,
    /// The input's `event_id` when it is JSON with a UUID there (lower-cased).
    pub event_id: Option<String>,
    /// The event with the same `event_id` accepted at or after the rejection: the fixed resend.
    pub resolved_by: Option<Resolution>,
    pub raw_bytes: usize,
    /// The input as text when it is UTF-8 and at most [`MAX_EVENT_BYTES`]; else `None` (read
    /// its bytes with [`Store::get_rejection`]).
    pub raw: Option<String>,
}

/// Where the fixed event was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub seq: u64,
    pub received_at: String,
}

/// Which rejections to list (all `None` / false: every one).
#[derive(Debug, Clone, Default)]
pub struct RejectionFilter {
    pub reason: Option<RejectReason>,
    pub site: Option<String>,
    /// Only those without a [`Resolution`].
    pub open: bool,
    /// Only ids greater than this (paging).
    pub after_id: u64,
    /// What the registry had received by this instant (Unix microseconds): rejections made by
    /// then, resolved only by a fix received by then; `None`: everything.
    pub known_at_micros: Option<i64>,
}

/// Calls `f` with every rejection that passes `filter`, oldest first, until `f` returns false.
pub fn for_each_rejection(
    store: &Store,
    filter: &RejectionFilter,
    mut f: impl FnMut(RejectionEntry) -> bool,
) -> Result<(), StoreError> {
    for r in store.rejections() {
        let r = r?;
        if r.id <= filter.after_id
            || filter.reason.is_some_and(|code| code.code() != r.reason)
            || filter.known_at_micros.is_some_and(|k| r.at_micros > k)
        {
            continue;
        }
        let (event_id, site) = peek(&r);
        if filter.site.as_deref().is_some_and(|s| site.as_deref() != Some(s)) {
            continue;
        }
        let resolved_by = resolution(store, &r, event_id.as_deref(), filter.known_at_micros)?;
        if filter.open && resolved_by.is_some() {
            continue;
        }
        let raw = (r.raw.len() <= MAX_EVENT_BYTES).then(|| std::str::from_utf8(&r.raw).ok().map(str::to_owned)).flatten();
        let entry = RejectionEntry {
            id: r.id,
            rejected_at: instant(r.at_micros),
            raw_bytes: r.raw.len(),
            source: r.source,
            site,
            reason: r.reason,
            message: r.message,
            event_id,
            resolved_by,
            raw,
        };
        if !f(entry) {
            break;
        }
    }
    Ok(())
}

/// The input's `event_id` (a UUID, lower-cased) and its site, as far as they can be read.
fn peek(r: &StoredRejection) -> (Option<String>, Option<String>) {
    let value: Option<Value> = serde_json::from_slice(&r.raw).ok();
    let field = |key: &str| value.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str);
    let event_id = field("event_id").and_then(|s| uuid::Uuid::parse_str(s).ok()).map(|u| u.hyphenated().to_string());
    // The subject's site token is who published it (a site_mismatch's body names another site).
    let subject_site =
        r.source.strip_prefix("registry.events.").and_then(|rest| rest.split('.').next()).filter(|s| !s.is_empty());
    let site = subject_site.or_else(|| field("site_id")).map(str::to_owned);
    (event_id, site)
}

/// The event with the same id accepted at or after the rejection (and by `known_at`).
fn resolution(
    store: &Store,
    r: &StoredRejection,
    event_id: Option<&str>,
    known_at_micros: Option<i64>,
) -> Result<Option<Resolution>, StoreError> {
    // An event_id_conflict's stored event is the one it collided with, not a fix: a different
    // content under a stored id is sent again as a correction with a new id (`supersedes`).
    let Some(event_id) = event_id.filter(|_| r.reason != RejectReason::EventIdConflict.code()) else { return Ok(None) };
    let Some(seq) = store.seq_of_event_id(event_id)? else { return Ok(None) };
    let Some(event) = store.get(seq)? else { return Ok(None) };
    // At or after: one import batch stamps its lines, accepted and rejected, with one time.
    if event.received_at_micros < r.at_micros || known_at_micros.is_some_and(|k| event.received_at_micros > k) {
        return Ok(None);
    }
    Ok(Some(Resolution { seq, received_at: instant(event.received_at_micros) }))
}

fn instant(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}
