//! registry-bus: the NATS JetStream layer the services share.
//!
//! Owns the subject layout ([`subjects`]), the bus configuration ([`config`]), connecting with
//! retry and endless reconnect ([`connect`]), the idempotent set-up of the four streams
//! ([`streams`]) and of durable pull consumers ([`consumer`]), and publishing with an
//! idempotency key while awaiting the JetStream ack ([`publish`]). docs/bus.md is the guide.
//!
//! Architecture invariant: nothing here knows what an event means; payloads are bytes and the
//! only identifiers looked at are the site token of a subject and the patient id to partition.

pub mod config;
pub mod connect;
pub mod consumer;
pub mod error;
pub mod publish;
pub mod streams;
pub mod subjects;

pub use config::{BusConfig, Credentials, Secret, StreamLimits};
pub use connect::{connect, connect_jetstream, jetstream_context};
pub use consumer::{
    durable_pull_consumer, durable_pull_consumer_with, next_batch, next_batch_lingering, replay_if_store_behind, ConsumerStart,
};
pub use error::BusError;
pub use publish::{publish_with_id, publish_with_id_and_policy, PublishOutcome, RetryPolicy};
pub use streams::{ensure_streams, stream_configs, ACCEPTED, ALERTS, EVENTS, REJECTED};
pub use subjects::SubjectError;
/// The client types callers of this crate handle (headers of a publish, a JetStream context).
pub use async_nats::{jetstream::consumer::PullConsumer, jetstream::Context as JetStreamContext, HeaderMap};

/// Header carrying the ingest's arrival time (Unix µs) of an accepted event to the projector, so
/// `known_at` views agree between the ingest and projector stores.
pub const RECEIVED_AT_HEADER: &str = "Registry-Received-At";
