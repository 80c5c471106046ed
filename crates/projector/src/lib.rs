//! `registry-projector`: keeps every patient's labels up to date from the log, with the pure fold
//! of `registry-domain`, and turns each change into alerts-as-data.
//!
//! Architecture invariants:
//! - Labels are derived: each is a pure function of the patient's events in view, so they can be
//!   rebuilt from the log at any time and `registry verify` checks that they equal a fresh replay.
//! - Catch-up is driven by the `labels_through_seq` checkpoint, written in the same atomic batch
//!   as the labels: after a crash the next run recomputes exactly the patients it had not finished.
//! - Alerts are stored (history + outbox) before the labels that raised them; an alert_id is a
//!   hash of its facts, so recomputation never raises the same alert twice.
//! - The refold cache (`cache`) only saves work: a catch-up with it gives the same labels and
//!   alerts as one without (tests/cached_refold.rs).

mod cache;
mod fold;
pub mod query;
pub mod service;

pub use cache::{DEFAULT_CACHE_EVENTS, MIN_IDLE};
pub use fold::{CatchUp, LabelRecord, Projector, ProjectorError, Serves};
