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
    let config = consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some(format!("registry durable consumer {name}")),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        filter_subject: filter_subject.to_owned(),
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
