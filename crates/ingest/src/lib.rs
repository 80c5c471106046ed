//! `registry-ingest`: the door of the registry. Raw inputs (file lines or bus messages) are
//! validated by the domain crate, de-duplicated and appended to the log by the store, and every
//! input that is not accepted is kept with its reason, so that nothing sent is lost.
//!
//! Architecture invariant: one call of [`ingest_batch`] is one unit of work: it ends with a
//! flush, and only after it returns may the caller acknowledge any of its inputs. The bus service
//! ([`service`]) acknowledges a message only after its accepted events are also published
//! downstream (outbox).

mod batch;
mod metrics;
mod rejections;
pub mod service;

pub use batch::{ingest_batch, ingest_batch_accepted, AcceptedEvent, BatchSummary, InputOutcome, RawInput};
pub use metrics::IngestMetrics;
pub use rejections::{for_each_rejection, RejectionEntry, RejectionFilter, Resolution};
