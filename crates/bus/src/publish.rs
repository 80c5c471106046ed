//! Publishing with an idempotency key (`Nats-Msg-Id`) and waiting for the JetStream ack.
//!
//! The ack means the stream stored the message (or already had it: `duplicate`). Transient
//! failures (ack timeout, connection lost, JetStream not ready after a restart) are retried with
//! the same message id, which is safe: if an earlier attempt was stored and only its ack was
//! lost, the server answers `duplicate = true` with the original sequence.

use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::connect::backoff;
use crate::error::BusError;

/// What the server said about a published message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Stream sequence of the stored message (of the original one for a duplicate).
    pub seq: u64,
    /// The message id was already in the stream's duplicate window: nothing new was stored.
    pub duplicate: bool,
}

/// How often and how patiently a publish is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// Upper bound on one attempt (publish + ack), on top of the context's own ack timeout.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts with exponential backoff (100 ms … 5 s): rides over a server restart of
    /// ~15 s; after that the caller keeps the message and retries later.
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

fn is_transient(kind: PublishErrorKind) -> bool {
    match kind {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        // No responders: the stream's server is (re)starting or a leader election is running.
        | PublishErrorKind::StreamNotFound
        // Other covers a failed send on a closed connection as well as a server error reply;
        // retrying a server error reply costs a few attempts, giving up on a dropped connection
        // would lose a message, so retry.
        | PublishErrorKind::Other => true,
        PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence
        | PublishErrorKind::MaxPayloadExceeded => false,
    }
}

/// Publishes `payload` on `subject` with `Nats-Msg-Id: msg_id` (plus any `headers`) and waits
/// for the JetStream ack, retrying transient failures with [`RetryPolicy::default`].
pub async fn publish_with_id(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
) -> Result<PublishOutcome, BusError> {
    publish_with_id_and_policy(
        js,
        subject,
        msg_id,
        headers,
        payload,
        RetryPolicy::default(),
    )
    .await
}

/// [`publish_with_id`] with an explicit retry policy.
#[tracing::instrument(level = "debug", skip(js, headers, payload, policy), fields(bytes = payload.len()), err)]
pub async fn publish_with_id_and_policy(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
    policy: RetryPolicy,
) -> Result<PublishOutcome, BusError> {
    let attempts = policy.attempts.max(1);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut message = PublishMessage::build().payload(payload.clone());
        if let Some(headers) = &headers {
            message = message.headers(headers.clone());
        }
        let message = message.message_id(msg_id);
        let result = tokio::time::timeout(policy.attempt_timeout, async {
            js.send_publish(subject.to_owned(), message).await?.await
        })
        .await
        .unwrap_or_else(|_elapsed| Err(PublishError::new(PublishErrorKind::TimedOut)));
        match result {
            Ok(ack) => {
                if ack.duplicate {
                    tracing::debug!(seq = ack.sequence, "duplicate dropped by the server");
                }
                return Ok(PublishOutcome {
                    seq: ack.sequence,
                    duplicate: ack.duplicate,
                });
            }
            Err(source) if !is_transient(source.kind()) => {
                return Err(BusError::PublishRejected {
                    subject: subject.to_owned(),
                    source,
                });
            }
            Err(source) if attempt >= attempts => {
                return Err(BusError::PublishUnacked {
                    subject: subject.to_owned(),
                    attempts: attempt,
                    source,
                });
            }
            Err(source) => {
                let delay = backoff(attempt - 1);
                tracing::warn!(attempt, error = %source, ?delay, "publish not acknowledged, retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
