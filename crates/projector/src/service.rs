//! The projector service: a durable consumer on ACCEPTED → its own copy of the log → catch-up →
//! labels and alerts durable → alerts published (`Nats-Msg-Id = alert_id`) → messages acked.
//!
//! Alerts are written to the store's alert outbox in the same step as the labels, so an alert
//! computed before a crash is published after it; a recomputed alert has the same id (same facts)
//! and is stored and delivered once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use registry_bus::{publish_with_id, subjects, BusError};
use registry_domain::stored;
use registry_domain::events::Event;
use registry_store::{AppendOutcome, NewEvent, OutboxPosition, StoreError};

use crate::fold::{Projector, ProjectorError};
use crate::query::{self, QUEUE_GROUP};

pub use registry_bus::RECEIVED_AT_HEADER;

/// Settings of the projector service.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Durable consumer name on ACCEPTED (one per partition).
    pub consumer: String,
    /// Subject filter: `registry.accepted.>` or one partition `registry.accepted.<p>`.
    pub filter: String,
    /// Most messages in one unit of work.
    pub batch_max: usize,
    /// Redelivery delay of an unacknowledged message.
    pub ack_wait: Duration,
    /// How often the clock task looks for overdue follow-up.
    pub clock_interval: Duration,
    /// Stored batches that may wait for the publish stage while the next one is stored.
    pub pipeline_depth: usize,
    /// How long a batch may wait for more messages when a backlog is seen
    /// ([`registry_bus::next_batch_lingering`]).
    pub linger: Duration,
    /// Where to answer label queries (`registry.query.labels`, or `registry.query.labels.<p>`
    /// for one partition); `None`: no queries.
    pub query_subject: Option<String>,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            consumer: "projector".to_owned(),
            filter: "registry.accepted.>".to_owned(),
            batch_max: 1000,
            ack_wait: Duration::from_secs(30),
            clock_interval: Duration::from_secs(3600),
            pipeline_depth: 2,
            linger: Duration::ZERO,
            query_subject: Some(subjects::LABELS_QUERY.to_owned()),
        }
    }
}

/// Why the service stopped (fatal: the process restarts and redelivery repairs).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Projector(#[from] ProjectorError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
    #[error("a blocking store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Publishes every alert in the outbox and marks it done. Safe to repeat.
///
/// Goes on until the outbox is empty: a catch-up after a crash or a long outage can raise more
/// alerts than one round takes, and nothing else would publish the rest before the next batch
/// arrives (regression: alerts beyond the first 10,000 stayed unpublished when the stream ended).
pub async fn drain_alerts(projector: &Projector, js: &jetstream::Context) -> Result<usize, ServiceError> {
    let (n, last) = publish_alerts(projector, js).await?;
    mark_alerts_done(projector, last).await?;
    Ok(n)
}

/// How many outbox entries one scan reads.
const ALERT_ROUND: usize = 10_000;

/// Publishes every alert in the outbox, oldest first, in rounds of [`ALERT_ROUND`]
/// (`Nats-Msg-Id = alert_id`, acks awaited), and returns how many and the outbox position of the
/// last one, not yet marked done: the caller marks it with [`mark_alerts_done`] (an alert left
/// unmarked is published again later and dropped by the stream as a duplicate).
async fn publish_alerts(
    projector: &Projector,
    js: &jetstream::Context,
) -> Result<(usize, Option<OutboxPosition>), ServiceError> {
    let mut published = 0;
    let mut last: Option<OutboxPosition> = None;
    loop {
        let store = projector.store().clone();
        let after = last.clone();
        let pending =
            tokio::task::spawn_blocking(move || store.alert_outbox_pending_after(after.as_ref(), ALERT_ROUND)).await??;
        let Some(end) = pending.last().map(|p| p.position.clone()) else {
            return Ok((published, last));
        };
        let full = pending.len() >= ALERT_ROUND;
        let results: Vec<Result<(), ServiceError>> = futures::stream::iter(pending.into_iter().map(|a| {
            let js = js.clone();
            async move {
                let subject = subjects::alerts_subject(&a.kind).map_err(|e| ServiceError::Consumer(e.to_string()))?;
                publish_with_id(&js, &subject, &a.alert_id, None, a.body.into()).await?;
                Ok(())
            }
        }))
        .buffer_unordered(64)
        .collect()
        .await;
        for r in results {
            r?;
            published += 1;
        }
        last = Some(end);
        if !full {
            return Ok((published, last));
        }
    }
}

/// Marks the outbox published through `last` (flushed).
async fn mark_alerts_done(projector: &Projector, last: Option<OutboxPosition>) -> Result<(), ServiceError> {
    let Some(last) = last else { return Ok(()) };
    let store = projector.store().clone();
    tokio::task::spawn_blocking(move || store.alert_outbox_done_through(&last)).await??;
    Ok(())
}

/// How long to pause after the bus stayed unavailable through a publish's retries.
const OUTAGE_PAUSE: Duration = Duration::from_secs(1);

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Subscribes to `subject` (queue group [`QUEUE_GROUP`]) and returns the task that answers label
/// queries ([`crate::query`]) until the subscription ends. Each answer is computed on the
/// blocking pool, at most 4 at a time, beside the batches (sled serves concurrent readers).
pub async fn serve_queries(
    projector: Projector,
    client: async_nats::Client,
    subject: String,
) -> Result<impl Future<Output = ()>, ServiceError> {
    let sub = client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.to_owned())
        .await
        .map_err(|e| ServiceError::Consumer(format!("cannot subscribe to {subject}: {e}")))?;
    tracing::info!(%subject, "answering label queries");
    Ok(async move {
        sub.for_each_concurrent(4, |msg| {
            let projector = projector.clone();
            let client = client.clone();
            async move {
                let Some(reply) = msg.reply.clone() else { return };
                // Room for the headers and the protocol line.
                let max_bytes = client.server_info().max_payload.saturating_sub(4096);
                let payload = msg.payload.clone();
                let answer = tokio::task::spawn_blocking(move || query::answer(&projector, &payload, today(), max_bytes))
                    .await
                    .unwrap_or_else(|e| query::Answer::Error { code: "internal", message: e.to_string() });
                let (headers, body) = answer.into_reply();
                let mut map = async_nats::HeaderMap::new();
                for (k, v) in headers {
                    map.insert(k, v.as_str());
                }
                if let Err(e) = client.publish_with_headers(reply, map, body.into()).await {
                    tracing::warn!(error = %e, "label query reply not sent");
                }
            }
        })
        .await;
    })
}

/// A batch whose labels and alerts are durable, waiting for its alerts to be published and
/// its messages acknowledged.
struct Projected {
    msgs: Vec<jetstream::Message>,
    started: Instant,
    store_time: Duration,
    patients: usize,
}

/// The server's limit of unacknowledged messages for a pipeline of `depth` batches.
fn max_ack_pending(batch_max: usize, depth: usize) -> i64 {
    i64::try_from(batch_max.saturating_mul(depth + 3)).unwrap_or(i64::MAX).max(1000)
}

/// Runs the projector service until `shutdown` resolves; the batches in flight are finished
/// first.
///
/// Two stages run concurrently (docs/bus.md, "Pipelining"): *store* takes every message
/// waiting (up to `batch_max`), appends them to the projector's log and catches up (alerts,
/// then labels with their checkpoint, one flush); *publish* publishes the alert outbox
/// (`Nats-Msg-Id = alert_id`), awaits the acks, acknowledges the batch's messages, then marks
/// the alerts done. So a
/// message is acknowledged only after its labels and alerts are durable and its alerts are on
/// ALERTS, while the next batch is already being stored.
pub async fn run(
    projector: Projector,
    js: jetstream::Context,
    cfg: ProjectorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    resume_or_replay(&projector, &js, &cfg.consumer).await?;
    let consumer = registry_bus::durable_pull_consumer_with(
        &js,
        registry_bus::ACCEPTED,
        &cfg.consumer,
        &cfg.filter,
        cfg.ack_wait,
        -1,
        max_ack_pending(cfg.batch_max, cfg.pipeline_depth),
    )
    .await?;
    // Finish what a crash interrupted: labels not yet computed, alerts not yet published.
    {
        let p = projector.clone();
        tokio::task::spawn_blocking(move || p.catch_up(today())).await??;
    }
    drain_alerts(&projector, &js).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(cfg.batch_max)
        .messages()
        .await
        .map_err(|e| ServiceError::Consumer(e.to_string()))?;
    let queries = match &cfg.query_subject {
        Some(subject) => Some(tokio::spawn(serve_queries(projector.clone(), js.client(), subject.clone()).await?)),
        None => None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Projected>(cfg.pipeline_depth.max(1));
    let publisher = tokio::spawn(publish_stage(projector.clone(), js.clone(), rx));
    let mut clock = tokio::time::interval(cfg.clock_interval);
    let mut shutdown = pin!(shutdown);
    tracing::info!(consumer = %cfg.consumer, filter = %cfg.filter, "projector running");
    let mut store_err = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = clock.tick() => {
                let p = projector.clone();
                match tokio::task::spawn_blocking(move || p.raise_overdue(today())).await {
                    // New alerts are in the outbox: the publish stage sends them with the next
                    // batch; without traffic, they go out now.
                    Ok(Ok(n)) if n > 0 => {
                        if tx.send(Projected { msgs: Vec::new(), started: Instant::now(), store_time: Duration::ZERO, patients: 0 }).await.is_err() {
                            break;
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => { store_err = Some(e.into()); break; }
                    Err(e) => { store_err = Some(e.into()); break; }
                }
            }
            b = registry_bus::next_batch_lingering(&mut messages, cfg.batch_max, cfg.linger) => {
                let Some(msgs) = b else { break };
                match store_batch(&projector, &cfg.consumer, msgs).await {
                    Ok(projected) => {
                        if tx.send(projected).await.is_err() {
                            // The publish stage stopped with an error: it is reported below.
                            break;
                        }
                    }
                    Err(e) => { store_err = Some(e); break; }
                }
            }
        }
    }
    drop(tx);
    let published = publisher.await?;
    if let Some(q) = queries {
        q.abort();
    }
    if let Some(e) = store_err {
        return Err(e);
    }
    published?;
    tracing::info!("projector stopped");
    Ok(())
}

async fn publish_stage(
    projector: Projector,
    js: jetstream::Context,
    mut rx: tokio::sync::mpsc::Receiver<Projected>,
) -> Result<(), ServiceError> {
    while let Some(batch) = rx.recv().await {
        let t = Instant::now();
        let published = match publish_alerts(&projector, &js).await {
            Ok((_, last)) => last,
            // The server is away longer than one publish's retries: the labels and the alert
            // outbox are durable, the messages unacknowledged; redelivery after ack_wait (or
            // the next batch) publishes the rest. Exiting would stop `registry serve` as a
            // whole on a long outage.
            Err(ServiceError::Bus(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "bus unavailable; batch left unacknowledged for redelivery");
                tokio::time::sleep(OUTAGE_PAUSE).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let t_alerts = t.elapsed();
        for m in &batch.msgs {
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "ack failed; redelivery is absorbed as a duplicate");
            }
        }
        // After the acks: marking is bookkeeping (its flush need not delay them), but it is
        // done before the next batch reads the outbox, which would otherwise publish these again.
        mark_alerts_done(&projector, published).await?;
        if !batch.msgs.is_empty() {
            tracing::debug!(
                n = batch.msgs.len(),
                patients = batch.patients,
                store_ms = batch.store_time.as_secs_f64() * 1e3,
                alerts_ms = t_alerts.as_secs_f64() * 1e3,
                total_ms = batch.started.elapsed().as_secs_f64() * 1e3,
                "projector batch"
            );
        }
    }
    Ok(())
}

/// Before the consumer is created: when it had acknowledged messages this store does not hold
/// (restored from a backup, or lost), it is deleted, so that it is created again and the
/// partition of ACCEPTED is read from its first message; the events the store holds come again
/// as duplicates (event_id), the others are projected, and their alerts keep their alert_ids.
/// docs/bus.md, "A store restored from a backup".
async fn resume_or_replay(projector: &Projector, js: &jetstream::Context, consumer: &str) -> Result<(), ServiceError> {
    let store = projector.store();
    let through = store.bus_through(consumer)?;
    let empty = store.holds_nothing()?;
    let start = registry_bus::replay_if_store_behind(js, registry_bus::ACCEPTED, consumer, through, empty).await?;
    if let (registry_bus::ConsumerStart::Resume { acked_through }, None) = (start, through) {
        // A store written before the position was recorded: taken as current.
        store.note_bus_through(consumer, acked_through)?;
    }
    Ok(())
}

/// The store stage of one batch: the events into the projector's log (one flush), then
/// catch-up on the events just decoded (alerts, then labels and checkpoint, one flush).
async fn store_batch(projector: &Projector, consumer: &str, msgs: Vec<jetstream::Message>) -> Result<Projected, ServiceError> {
    let started = Instant::now();
    let last_stream_seq = msgs.iter().filter_map(|m| m.info().ok().map(|i| i.stream_sequence)).max();
    let consumer = consumer.to_owned();
    let now = chrono::Utc::now().timestamp_micros();
    let mut rows: Vec<(String, String, bytes::Bytes, i64)> = Vec::with_capacity(msgs.len());
    let mut decoded = Vec::with_capacity(msgs.len());
    for m in &msgs {
        match stored::decode(&m.payload) {
            Ok(event) => {
                let received = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(RECEIVED_AT_HEADER))
                    .and_then(|v| v.as_str().parse::<i64>().ok())
                    .unwrap_or(now);
                rows.push((event.event_id.hyphenated().to_string(), event.patient_id.as_str().to_owned(), m.payload.clone(), received));
                decoded.push(event);
            }
            // ACCEPTED carries only events the ingest validated; anything else is not ours.
            Err(e) => tracing::error!(subject = %m.subject, error = %e, "undecodable message on ACCEPTED dropped"),
        }
    }
    let p = projector.clone();
    let patients = tokio::task::spawn_blocking(move || -> Result<usize, ServiceError> {
        let events: Vec<NewEvent<'_>> = rows
            .iter()
            .map(|(id, pid, content, at)| NewEvent { event_id: id, patient_id: pid, content, received_at_micros: *at })
            .collect();
        // Durable with the append's flush, before any of the batch is acknowledged.
        if let Some(last) = last_stream_seq {
            p.store().note_bus_through(&consumer, last)?;
        }
        let outcomes = p.store().append_batch(&events)?;
        // The events just stored are decoded already: catch-up reuses them instead of decoding
        // the same bytes again from the log.
        let fresh: HashMap<u64, Event> = outcomes
            .into_iter()
            .zip(decoded)
            .filter_map(|(o, event)| match o {
                AppendOutcome::Accepted { seq } => Some((seq, event)),
                _ => None,
            })
            .collect();
        Ok(p.catch_up_with(today(), fresh)?.patients)
    })
    .await??;
    Ok(Projected { msgs, started, store_time: started.elapsed(), patients })
}
