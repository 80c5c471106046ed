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

/// What [`replay_if_store_behind`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStart {
    /// No such consumer yet: it is created and reads the stream from the start.
    New,
    /// The consumer goes on from where it is: the store holds every message it acknowledged.
    Resume {
        /// The consumer's ack floor (every message up to this stream sequence acknowledged).
        acked_through: u64,
    },
    /// The consumer had acknowledged messages the store does not hold (a store restored from a
    /// backup, or lost): it was deleted, so that it is created again and the service reads the
    /// stream from its first message; what the store already holds is recognised as duplicate.
    Replay {
        /// The consumer's ack floor before it was deleted.
        acked_through: u64,
        /// The last stream sequence the store holds the effect of (`None`: no record).
        store_through: Option<u64>,
    },
}

/// Checks durable consumer `name` on `stream` against the service's store before the service
/// (re)creates it (docs/bus.md, "A store restored from a backup").
///
/// `store_through`: the highest stream sequence whose effect the store holds (recorded with each
/// batch, durable no later than the batch's ack), `None` when the store has no such record.
/// `store_empty`: the store holds nothing at all. The consumer has acknowledged every message up
/// to its ack floor, and acknowledges only after the effect is durable, so a store holding less
/// than the ack floor lost messages: it was restored from an older copy, or lost. Then the
/// consumer is deleted (logged as a warning) and the caller creates it again from the start of the stream: every
/// message is read again, nothing acknowledged is lost, and the store's own idempotency keys
/// (event_id, a rejection's stream sequence) absorb what it already holds. A store with no
/// record but with contents (written before the record existed) is taken as current.
pub async fn replay_if_store_behind(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    store_through: Option<u64>,
    store_empty: bool,
) -> Result<ConsumerStart, BusError> {
    let state_err = |action: &'static str, message: String| BusError::ConsumerState {
        action,
        stream: stream.to_owned(),
        consumer: name.to_owned(),
        message,
    };
    let s = js.get_stream(stream).await.map_err(|e| state_err("read", e.to_string()))?;
    let info = match s.consumer_info(name).await {
        Ok(info) => info,
        Err(e) if consumer_not_found(&e) => return Ok(ConsumerStart::New),
        Err(e) => return Err(state_err("read", e.to_string())),
    };
    let acked_through = info.ack_floor.stream_sequence;
    let behind = match store_through {
        Some(through) => through < acked_through,
        None => store_empty && acked_through > 0,
    };
    if !behind {
        return Ok(ConsumerStart::Resume { acked_through });
    }
    s.delete_consumer(name).await.map_err(|e| state_err("delete", e.to_string()))?;
    tracing::warn!(
        consumer = name,
        acked_through,
        store_through = store_through.unwrap_or(0),
        "the store holds less than {stream} delivered and acknowledged (restored from a backup, or lost): reading {stream} again from its first message"
    );
    Ok(ConsumerStart::Replay { acked_through, store_through })
}

fn consumer_not_found(e: &async_nats::jetstream::context::ConsumerInfoError) -> bool {
    use async_nats::jetstream::context::ConsumerInfoErrorKind as K;
    match e.kind() {
        K::NotFound => true,
        K::JetStream(j) => j.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND,
        _ => false,
    }
}

/// Waits for the next message of `messages`, then takes every further message that is already
/// there, up to `max` in all: a group-commit batch that grows with the backlog. `None` when the
/// stream ended. Errors of the stream (a missed heartbeat, a reconnect) are logged and skipped.
///
/// Why not `StreamExt::ready_chunks`: tokio's cooperative budget makes a channel report
/// "pending" after 128 items in one poll, so `ready_chunks` never returns more than 128
/// messages however many are waiting; here the draining runs outside the budget.
pub async fn next_batch<S, T, E>(messages: &mut S, max: usize) -> Option<Vec<T>>
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    next_batch_lingering(messages, max, std::time::Duration::ZERO).await
}

/// [`next_batch`], and when more than one message was already waiting (a backlog: the service
/// is behind) but fewer than `max`, waits up to `linger` for more before returning. One message
/// alone (a quiet stream) is returned at once, so latency at low rates is untouched; under load
/// the batches grow, and each batch's fixed costs (a sync, a refold of each touched patient)
/// are paid fewer times.
pub async fn next_batch_lingering<S, T, E>(messages: &mut S, max: usize, linger: std::time::Duration) -> Option<Vec<T>>
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::{FutureExt, StreamExt};
    let max = max.max(1);
    let mut batch = Vec::new();
    while batch.is_empty() {
        match messages.next().await? {
            Ok(m) => batch.push(m),
            Err(e) => tracing::warn!(error = %e, "consumer stream error; continuing"),
        }
    }
    tokio::task::unconstrained(async {
        while batch.len() < max {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => tracing::warn!(error = %e, "consumer stream error; continuing"),
                Some(None) | None => break,
            }
        }
    })
    .await;
    if batch.len() > 1 && !linger.is_zero() {
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(Ok(m))) => batch.push(m),
                Ok(Some(Err(e))) => tracing::warn!(error = %e, "consumer stream error; continuing"),
                Ok(None) | Err(_) => break,
            }
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures::channel::mpsc;

    use super::next_batch_lingering;

    type Item = Result<u32, String>;

    #[tokio::test]
    async fn a_lone_message_is_returned_at_once_whatever_the_linger() {
        let (tx, mut rx) = mpsc::unbounded::<Item>();
        tx.unbounded_send(Ok(1)).expect("send");
        let started = Instant::now();
        let batch = next_batch_lingering(&mut rx, 10, Duration::from_secs(10)).await;
        assert_eq!(batch, Some(vec![1]));
        assert!(started.elapsed() < Duration::from_secs(5), "did not linger");
    }

    #[tokio::test]
    async fn a_backlog_lingers_for_more_until_max_or_the_deadline() {
        let (tx, mut rx) = mpsc::unbounded::<Item>();
        tx.unbounded_send(Ok(1)).expect("send");
        tx.unbounded_send(Ok(2)).expect("send");
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            for n in 3..=6 {
                late.unbounded_send(Ok(n)).expect("send");
            }
        });
        // Max reached before the deadline: returns then, with 5; the 6th stays for the next.
        let started = Instant::now();
        let batch = next_batch_lingering(&mut rx, 5, Duration::from_secs(10)).await;
        assert_eq!(batch, Some(vec![1, 2, 3, 4, 5]));
        assert!(started.elapsed() < Duration::from_secs(5));
        // A stream error is skipped; the deadline ends a batch that stays short of max.
        tx.unbounded_send(Err("heartbeat".to_owned())).expect("send");
        tx.unbounded_send(Ok(7)).expect("send");
        let started = Instant::now();
        let batch = next_batch_lingering(&mut rx, 100, Duration::from_millis(50)).await;
        assert_eq!(batch, Some(vec![6, 7]));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // The end of the stream ends the batch, then `None`.
        tx.unbounded_send(Ok(8)).expect("send");
        drop(tx);
        assert_eq!(next_batch_lingering(&mut rx, 100, Duration::from_secs(10)).await, Some(vec![8]));
        assert_eq!(next_batch_lingering(&mut rx, 100, Duration::from_secs(10)).await, None);
    }
}
