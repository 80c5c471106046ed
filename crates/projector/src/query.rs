//! Label queries over NATS request/reply: what the API asks the projector (architecture.md,
//! "api … asks the projector over request/reply").
//!
//! Subject: `registry.query.labels` (a projector of one partition `p`: `registry.query.labels.<p>`),
//! queue group `registry-projector`, so replicas of one projector answer each request once.
//!
//! Request: a JSON object, every field optional, unknown fields refused:
//! `{"patient_id":"P001","as_of":"2018-05-31","known_at":"2018-06-01T00:00:00Z","after":"P000","limit":500}`.
//! `as_of` defaults to the projector's date (UTC), `known_at` to "everything received", `limit`
//! to 1,000 (at most 10,000). An empty payload is `{}`.
//!
//! Reply (`Registry-Status: ok`): the labels, one JSON object per patient per line, sorted by
//! patient_id, byte for byte what `registry labels --data <projector data> …` prints for the
//! same view (interfaces.md, "Labels"). Header `Registry-Count` is the number of lines. When more
//! patients follow, `Registry-Next-After` names the last patient of this page: send the same
//! request with `"after"` set to it for the next page. A page also ends before it would exceed the
//! server's maximum payload.
//!
//! Error (`Registry-Status: error`): one JSON object
//! `{"error":{"code":"bad_request"|"not_found"|"internal","message":"…"}}`.

use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::view::View;
use serde::Deserialize;

use crate::fold::Projector;

/// Header saying whether the reply is labels (`ok`) or an error (`error`).
pub const STATUS_HEADER: &str = "Registry-Status";
/// Header with the number of label lines in the reply.
pub const COUNT_HEADER: &str = "Registry-Count";
/// Header with the cursor of the next page (absent on the last page).
pub const NEXT_HEADER: &str = "Registry-Next-After";
/// The queue group of the projectors answering label queries.
pub const QUEUE_GROUP: &str = "registry-projector";

const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 10_000;

/// A label query, as sent on the wire.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsQuery {
    pub patient_id: Option<String>,
    pub as_of: Option<String>,
    pub known_at: Option<String>,
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Label lines (each ending in `\n`), their count, and the cursor of the next page.
    Labels { body: Vec<u8>, count: usize, next_after: Option<String> },
    /// An error with its code and message.
    Error { code: &'static str, message: String },
}

impl Answer {
    fn error(code: &'static str, message: impl Into<String>) -> Answer {
        Answer::Error { code, message: message.into() }
    }

    /// The reply's headers and payload.
    pub fn into_reply(self) -> (Vec<(&'static str, String)>, Vec<u8>) {
        match self {
            Answer::Labels { body, count, next_after } => {
                let mut headers = vec![(STATUS_HEADER, "ok".to_owned()), (COUNT_HEADER, count.to_string())];
                if let Some(next) = next_after {
                    headers.push((NEXT_HEADER, next));
                }
                (headers, body)
            }
            Answer::Error { code, message } => {
                let body = serde_json::json!({"error": {"code": code, "message": message}});
                (vec![(STATUS_HEADER, "error".to_owned())], serde_json::to_vec(&body).unwrap_or_default())
            }
        }
    }
}

fn parse_view(q: &LabelsQuery, today: NaiveDate) -> Result<View, Answer> {
    let as_of = match &q.as_of {
        None => today,
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| Answer::error("bad_request", format!("as_of {s:?} is not a date YYYY-MM-DD ({e})")))?,
    };
    let known_at = match &q.known_at {
        None => None,
        Some(s) => Some(DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| {
            Answer::error("bad_request", format!("known_at {s:?} is not an RFC 3339 time such as 2016-05-04T09:12:00Z ({e})"))
        })?),
    };
    Ok(View { as_of, known_at })
}

/// Answers one request payload. `today` is the default `as_of`; `max_bytes` bounds the body
/// (the server's maximum payload less room for headers).
pub fn answer(projector: &Projector, request: &[u8], today: NaiveDate, max_bytes: usize) -> Answer {
    let q: LabelsQuery = if request.iter().all(u8::is_ascii_whitespace) {
        LabelsQuery::default()
    } else {
        match serde_json::from_slice(request) {
            Ok(q) => q,
            Err(e) => return Answer::error("bad_request", format!("the request is not a labels query: {e}")),
        }
    };
    let view = match parse_view(&q, today) {
        Ok(v) => v,
        Err(a) => return a,
    };
    if let Some(patient_id) = &q.patient_id {
        return match projector.labels_in_view(&view, Some(patient_id)) {
            Ok(ps) => match ps.first() {
                Some(p) => {
                    let mut body = p.labels.to_json_line().into_bytes();
                    body.push(b'\n');
                    if body.len() > max_bytes {
                        return Answer::error("internal", format!("the labels of {patient_id} exceed the server's maximum payload"));
                    }
                    Answer::Labels { body, count: 1, next_after: None }
                }
                None => Answer::error("not_found", format!("no labels for patient {patient_id:?} in this view")),
            },
            Err(e) => Answer::error("internal", e.to_string()),
        };
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut body = Vec::new();
    let mut count = 0;
    let mut last: Option<String> = None;
    let mut full = false;
    let res = projector.for_each_in_view(&view, q.after.as_deref(), |patient_id, projection| {
        if count == limit {
            full = true;
            return false;
        }
        let mut line = projection.labels.to_json_line().into_bytes();
        line.push(b'\n');
        if body.len() + line.len() > max_bytes {
            full = true;
            return false;
        }
        body.extend_from_slice(&line);
        count += 1;
        last = Some(patient_id.to_owned());
        true
    });
    if let Err(e) = res {
        return Answer::error("internal", e.to_string());
    }
    if full && count == 0 {
        return Answer::error("internal", "one patient's labels exceed the server's maximum payload");
    }
    Answer::Labels { body, count, next_after: if full { last } else { None } }
}
