//! `registry-domain`: the functional core. Every clinical rule of `shared/spec/domain.md` as pure
//! functions (events in view → labels), the event contract's types and validation, alerts as data.
//!
//! Architecture invariant: this crate does no IO: no tokio, no sled, no NATS, no clock. The view
//! date and the arrival times are arguments.

pub mod events;
pub mod validate;
pub mod stored;
pub mod alerts;
pub mod config;
pub mod findings;
pub mod labels;
pub mod projection;
pub mod recist;
pub mod view;
pub mod synth;
