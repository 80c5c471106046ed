//! Durable pull consumers with explicit ack: how every service reads its stream.
//!
//! A message is acked only after its effect is durable (architecture principle 4); an unacked
//! message comes back after `ack_wait`, up to `max_deliver` times. Creation is create-or-update,
//! so calling it at every start-up is idempotent and applies a changed ack wait or filter.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};

use crate::error::BusError;

/// Creates (or updates to this config) the durable pull consumer `name` on `stream`, reading
/// `filter_subject` (empty = the whole stream) from the start, with explicit acks.
/// `max_deliver`: how many deliveries before the server stops redelivering a message
/// (-1 = forever). Keep it finite for poison messages only if the service records the drop.
#[tracing::instrument(skip(js), err)]
pub async fn durable_pull_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    filter_subject: &str,
    ack_wait: Duration,
    max_deliver: i64,
) -> Result<consumer::PullConsumer, BusError> {
    durable_pull_consumer_with(js, stream, name, filter_subject, ack_wait, max_deliver, 0).await
}

/// [`durable_pull_consumer`] with a `max_ack_pending`: how many delivered messages may be
/// unacknowledged at once (0 = the server's default, 1,000). A service that works on one batch
/// while the next is being fetched and the one before is being published needs room for about
/// three batches, or the server stops delivering while a batch is in flight.
#[tracing::instrument(skip(js), err)]
pub async fn durable_pull_consumer_with(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    filter_subject: &str,
    ack_wait: Duration,
    max_deliver: i64,
    max_ack_pending: i64,
) -> Result<consumer::PullConsumer, BusError> {
    let config = consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some(format!("registry durable consumer {name}")),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        filter_subject: filter_subject.to_owned(),
        max_ack_pending,
        ..Default::default()
    };
    js.create_consumer_on_stream(config, stream)
        .await
        .map_err(|source| BusError::ConsumerSetup {
            stream: stream.to_owned(),
            consumer: name.to_owned(),
            source,
        })
}

/// Waits for the next message of `messages`, then takes every further message that is already
/// there, up to `max` in all: a group-commit batch that grows with the backlog. `None` when the
/// stream ended. Errors of the stream (a missed heartbeat, a reconnect) are logged and skipped.
///
/// Why not `StreamExt::ready_chunks`: tokio's cooperative budget makes a channel report
/// "pending" after 128 items in one poll, so `ready_chunks` never returns more than 128
/// messages however many are waiting; here the draining runs outside the budget.
pub async fn next_batch<S, E>(messages: &mut S, max: usize) -> Option<Vec<jetstream::Message>>
where
    S: futures::Stream<Item = Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::{FutureExt, StreamExt};
    let mut batch = Vec::new();
    while batch.is_empty() {
        match messages.next().await? {
            Ok(m) => batch.push(m),
            Err(e) => tracing::warn!(error = %e, "consumer stream error; continuing"),
        }
    }
    tokio::task::unconstrained(async {
        while batch.len() < max.max(1) {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => tracing::warn!(error = %e, "consumer stream error; continuing"),
                Some(None) | None => break,
            }
        }
    })
    .await;
    Some(batch)
}
