//! The bus error type, with how a caller should handle each variant.
//!
//! Rule of thumb: set-up errors (connect, streams, consumers) are fatal at start-up — exit with
//! the chain printed and let the supervisor restart. Publish errors are per message: a transient
//! one means "not acknowledged, try again later, do not ack upstream"; a rejection means the
//! message itself cannot be published and retrying will not help.

use crate::subjects::SubjectError;
use async_nats::jetstream::context::{CreateStreamError, PublishError};

/// Errors of the bus layer. [`BusError::is_transient`] tells retry from fatal.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No server reachable within `initial_connect_timeout`. Fatal at start-up: exit non-zero,
    /// the supervisor restarts the service (after start-up the client reconnects forever).
    #[error("cannot connect to NATS at {url} after {attempts} attempts")]
    Connect {
        /// The configured URL.
        url: String,
        /// How many connection attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The credentials file could not be read or parsed. Fatal: fix the configuration.
    #[error("cannot read NATS credentials file {path}")]
    Credentials {
        /// The configured path.
        path: std::path::PathBuf,
        /// The IO or parse error.
        #[source]
        source: std::io::Error,
    },
    /// A subject could not be built or parsed. Fatal for this message (bad input or a bug):
    /// reject it, never retry.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// A stream could not be created or updated (server refused the config, e.g. a change of
    /// storage type, or JetStream unavailable). Fatal at start-up; the chain says which.
    #[error("cannot create or update stream {stream}")]
    StreamSetup {
        /// The stream name.
        stream: String,
        /// The server's answer.
        #[source]
        source: CreateStreamError,
    },
    /// A durable consumer could not be created or updated. Fatal at start-up.
    #[error("cannot create or update consumer {consumer} on stream {stream}")]
    ConsumerSetup {
        /// The stream name.
        stream: String,
        /// The durable name.
        consumer: String,
        /// The server's answer.
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
    /// A durable consumer's state could not be read or the consumer could not be deleted (at
    /// start-up, [`crate::replay_if_store_behind`]). Fatal at start-up.
    #[error("cannot {action} consumer {consumer} on stream {stream}: {message}")]
    ConsumerState {
        /// What was attempted (`read`, `delete`).
        action: &'static str,
        /// The stream name.
        stream: String,
        /// The durable name.
        consumer: String,
        /// The server's or client's answer.
        message: String,
    },
    /// The publish was not acknowledged after every retry (timeouts, server down, JetStream
    /// not ready). Transient: keep the message (outbox), do not ack upstream, retry later.
    /// Republishing with the same `Nats-Msg-Id` is safe: the server drops the copy.
    #[error("publish to {subject} not acknowledged after {attempts} attempts")]
    PublishUnacked {
        /// The subject published to.
        subject: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: PublishError,
    },
    /// The server answered the publish with an error (message too large, expected-sequence
    /// mismatch, …). Fatal for this message: retrying the same bytes gives the same answer.
    #[error("publish to {subject} rejected by the server")]
    PublishRejected {
        /// The subject published to.
        subject: String,
        /// The server's answer.
        #[source]
        source: PublishError,
    },
}

impl BusError {
    /// Whether retrying the same operation later may succeed (`true` only for
    /// [`BusError::PublishUnacked`]); everything else needs a fix in config or input.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::PublishUnacked { .. })
    }
}
